"""Registers the t2po-gym env ids as soon as ``gymnasium.envs`` is imported.

Gymnasium 1.x no longer loads ``gymnasium.envs`` entry-point plugins, so the package
installs ``t2po_gym_autoregister.pth``, which imports this module at interpreter
start. It only adds a one-shot import hook (no gymnasium, no t2po_gym import), so
start-up stays cheap; ``gym.make("T2PO/ALFWorld-v0")`` then works after
``import gymnasium`` alone.
"""

import sys


class _RegisterAfterGymnasium:
    def find_spec(self, name, path=None, target=None):
        if name != "gymnasium.envs":
            return None
        sys.meta_path.remove(self)
        import importlib.util

        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        exec_module = spec.loader.exec_module

        def exec_then_register(module):
            exec_module(module)
            try:
                from t2po_gym.registration import register_envs

                register_envs()
            except Exception as e:  # never break `import gymnasium`
                print(f"t2po-gym: could not register env ids: {e}", file=sys.stderr)

        spec.loader.exec_module = exec_then_register
        return spec


if not any(type(f).__name__ == "_RegisterAfterGymnasium" for f in sys.meta_path):
    sys.meta_path.insert(0, _RegisterAfterGymnasium())
