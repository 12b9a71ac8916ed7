"""Networks: shapes, action bounds, log-probabilities, Polyak math, augmentation."""
import math
from dataclasses import replace

import pytest
import torch

from networks import OLD_SPREAD_LIMIT, ActorCritic, ModelConfig, random_shift

TINY = ModelConfig(encoder="small", feature_dim=16, hidden_dim=32)
OBS_SHAPE = (3, 96, 96)


def test_shapes_and_action_bounds():
    model = ActorCritic(OBS_SHAPE, TINY)
    obs = torch.randint(0, 256, (5, *OBS_SHAPE), dtype=torch.uint8)
    features = model.encoder(obs)
    assert features.shape == (5, 16)
    action, log_prob = model.actor.sample(features)
    assert action.shape == (5, 3) and log_prob.shape == (5,)
    for a in (action, model.act(obs)):
        assert (a[:, 0].abs() <= 1).all() and (a[:, 1:] >= 0).all() and (a[:, 1:] <= 1).all()
    assert model.critic(features, action).shape == (2, 5)


def test_log_prob_matches_change_of_variables():
    """Monte-Carlo check: E[-log p] of a tanh-Gaussian equals the entropy estimated from a density histogram."""
    torch.manual_seed(0)
    model = ActorCritic(OBS_SHAPE, TINY)
    features = torch.zeros(1, 16)
    with torch.no_grad():
        mean, log_std = model.actor(features)
        action, log_prob = model.actor.sample(features.expand(20000, 16))
    # Independent dims: log p = sum of per-dim log densities; check steering dim against numeric density.
    steer = action[:, 0]
    u = torch.atanh(steer.clamp(-0.999999, 0.999999))
    normal = torch.distributions.Normal(mean[0, 0], log_std[0, 0].exp())
    per_dim = normal.log_prob(u) - torch.log(1 - steer**2 + 1e-12)
    gas = (action[:, 1] - 0.5) / 0.5
    u_gas = torch.atanh(gas.clamp(-0.999999, 0.999999))
    per_dim_gas = (torch.distributions.Normal(mean[0, 1], log_std[0, 1].exp()).log_prob(u_gas)
                   - torch.log(1 - gas**2 + 1e-12) - math.log(0.5))
    brake = (action[:, 2] - 0.5) / 0.5
    u_brake = torch.atanh(brake.clamp(-0.999999, 0.999999))
    per_dim_brake = (torch.distributions.Normal(mean[0, 2], log_std[0, 2].exp()).log_prob(u_brake)
                     - torch.log(1 - brake**2 + 1e-12) - math.log(0.5))
    expected = per_dim + per_dim_gas + per_dim_brake
    assert torch.allclose(log_prob, expected, atol=1e-2)


def test_polyak_update_math():
    model = ActorCritic(OBS_SHAPE, TINY)
    online = next(model.critic.parameters())
    target = next(model.target_critic.parameters())
    with torch.no_grad():
        online.fill_(1.0)
        target.fill_(0.0)
    model.sync_targets(tau=0.1)
    assert torch.allclose(target, torch.full_like(target, 0.1))
    model.sync_targets(tau=0.1)
    assert torch.allclose(target, torch.full_like(target, 0.19))
    assert not target.requires_grad


def test_random_shift_moves_content_within_pad():
    obs = torch.zeros(64, 1, 12, 12, dtype=torch.uint8)
    obs[:, 0, 6, 6] = 255
    shifted = random_shift(obs, pad=2)
    assert shifted.dtype == torch.uint8 and shifted.shape == obs.shape
    positions = {tuple((s[0] == 255).nonzero()[0].tolist()) for s in shifted}
    assert len(positions) > 3  # samples get different offsets
    assert all(abs(r - 6) <= 2 and abs(c - 6) <= 2 for r, c in positions)


def test_encoder_scales_pixels_to_half_range_inside_its_first_layer():
    """The folded scaling must give exactly the network of frames / 255 - 0.5 (what BC runs were trained as)."""
    torch.manual_seed(0)
    encoder = ActorCritic(OBS_SHAPE, TINY).encoder
    obs = torch.randint(0, 256, (4, *OBS_SHAPE), dtype=torch.uint8)
    explicit = encoder.projection(encoder.convs(obs.float() / 255.0 - 0.5))
    assert torch.allclose(encoder(obs), explicit, atol=1e-5)


def test_bf16_autocast_encoder_agrees_with_float32():
    """Under bfloat16 autocast (channels-last frames on CPU) the features stay those of float32, up to rounding."""
    torch.manual_seed(0)
    encoder = ActorCritic(OBS_SHAPE, TINY).encoder
    obs = torch.randint(0, 256, (8, *OBS_SHAPE), dtype=torch.uint8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = encoder(obs).float()
    assert (low - encoder(obs)).abs().max() < 0.05 and low.std() > 0.1


def test_checkpoints_with_named_q_heads_load_into_the_ensemble():
    """Runs saved before the critic ensemble (two nn.Linear heads q1, q2) load with identical Q values."""
    from networks import mlp, upgrade_state_dict

    torch.manual_seed(0)
    model = ActorCritic(OBS_SHAPE, TINY)
    heads = [mlp(16 + 3, 32, 1) for _ in range(2)]
    old = {k: v for k, v in model.state_dict().items() if "critic" not in k}
    for prefix in ("critic", "target_critic"):
        for h, head in enumerate(heads, start=1):
            old.update({f"{prefix}.q{h}.{k}": v for k, v in head.state_dict().items()})
    model.load_state_dict(upgrade_state_dict(old))
    features, action = torch.randn(4, 16), torch.rand(4, 3)
    expected = torch.stack([head(torch.cat([features, action], -1)).squeeze(-1) for head in heads])
    assert torch.allclose(model.critic(features, action), expected, atol=1e-6)
    assert torch.allclose(model.target_critic(features, action), expected, atol=1e-6)


def test_critic_layer_norm_makes_the_value_blind_to_the_scale_of_hidden_activations():
    """With `critic_layer_norm` the hidden layers are normalised: scaling the first layer leaves Q as it is."""
    features, action = torch.randn(8, 16), torch.rand(8, 3)
    critics = {}
    for layer_norm in (True, False):
        critic = critics[layer_norm] = ActorCritic(OBS_SHAPE, replace(TINY, critic_layer_norm=layer_norm)).critic
        before = critic(features, action)
        with torch.no_grad():
            first = critic.net[0]
            first.weight.mul_(5.0)
            first.bias.mul_(5.0)
        assert torch.allclose(critic(features, action), before, atol=1e-4) == layer_norm
    assert set(critics[True].state_dict()) == set(critics[False].state_dict())  # same keys either way


def test_expected_action_is_the_average_of_the_squashed_samples():
    torch.manual_seed(0)
    model = ActorCritic(OBS_SHAPE, TINY)
    features = torch.randn(4, 16)
    with torch.no_grad():
        # off-centre, wide (std e^0.5): the two part
        model.actor.net[-1].bias[:3], model.actor.net[-1].bias[3:] = 1.0, 0.5
        samples = torch.stack([model.actor.sample(features)[0] for _ in range(20000)]).mean(0)
        expected, squashed_mean = model.actor.expected_from(*model.actor(features)), model.actor.deterministic(features)
    assert torch.allclose(expected, samples, atol=0.01)
    assert (expected - squashed_mean).abs().max() > 0.05


def test_spread_limit_keeps_a_saturated_brake_off_in_the_average_action():
    """BC's brake: mean far below the bound (no brake), spread e^1.4 ~ 4: its average action brakes unless the
    spread is limited; tanh(mean) is the same either way, and the frozen BC actor gets the same limit."""
    features = torch.zeros(4, TINY.feature_dim)
    brakes = {}
    for limit in (OLD_SPREAD_LIMIT, 1.0):
        model = ActorCritic(OBS_SHAPE, replace(TINY, bc_actor=True, spread_limit=limit))
        for actor in (model.actor, model.bc_actor):
            with torch.no_grad():  # outputs: pre-tanh means (steer, gas, brake), then their log-stds
                actor.net[-1].weight.zero_()
                actor.net[-1].bias.copy_(torch.tensor([0.0, 0.0, -6.0, -3.0, -3.0, 1.4]))
        mean, log_std = model.actor(features)
        assert torch.equal(log_std, model.bc_actor(features)[1]) and log_std.max().item() <= math.log(limit) + 1e-6
        brakes[limit] = model.actor.expected_from(mean, log_std)[:, 2].max().item()
        assert model.actor.squash(mean)[:, 2].max().item() < 1e-4
    assert brakes[OLD_SPREAD_LIMIT] > 0.03 and brakes[1.0] < 0.005
    with pytest.raises(ValueError, match="spread_limit"):
        ActorCritic(OBS_SHAPE, replace(TINY, spread_limit=0.0))


def test_policy_action_chooses_what_the_model_drives():
    obs = torch.randint(0, 256, (3, *OBS_SHAPE), dtype=torch.uint8)
    torch.manual_seed(0)
    mean_model = ActorCritic(OBS_SHAPE, TINY)
    expected_model = ActorCritic(OBS_SHAPE, replace(TINY, policy_action="expected"))
    expected_model.load_state_dict(mean_model.state_dict())
    features = mean_model.encoder(obs)
    assert torch.equal(mean_model.act(obs), mean_model.actor.deterministic(features))
    assert torch.allclose(expected_model.act(obs), mean_model.actor.expected_from(*mean_model.actor(features)).detach())
