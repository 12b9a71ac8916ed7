"""Command-line flags the tests share: networks small enough that a training step takes milliseconds."""
TINY = ["--encoder", "small", "--feature_dim", "16", "--hidden_dim", "32", "--obs_size", "48", "--frame_stack", "2"]
