"""The t2po-gym environments, one sub-package each."""
