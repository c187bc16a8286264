"""og-marl-inspo: InSPO, CPA and their baselines as OG-MARL systems.

Importing the package is cheap: TensorFlow is imported only by the modules that
build networks or train (systems, trainer), never by `envs`, `data` or `reporting`.
"""

__version__ = "0.1.0"
