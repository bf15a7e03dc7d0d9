"""The registry of named methods. A new method: one file with a Method subclass, one line here."""
from .base import METHODS, Method, MethodSpec, get_method, register
from .blur_ig import BlurIG
from .ggig import GGIG
from .gradient import Gradient
from .guided_ig import GuidedIG
from .ig import IntegratedGradients
from .path import CustomPath

register("gradient", Gradient)
register("ig", IntegratedGradients)
register("ig+idgi", IntegratedGradients, "IG path aggregated with IDGI (exact completeness)", aggregator="idgi")
register("guided_ig", GuidedIG)
register("guided_ig+idgi", GuidedIG, "Guided IG path aggregated with IDGI", aggregator="idgi")
register("blur_ig", BlurIG)
register("blur_ig+idgi", BlurIG, "Blur IG path aggregated with IDGI", aggregator="idgi")
register("path", CustomPath)
register("path+idgi", CustomPath, "a user-supplied path aggregated with IDGI", aggregator="idgi")
register("ggig", GGIG, "GGIG, fast default (20 points x 10 ascent steps, lr 1e-4)")
register("ggig_paper", GGIG, "GGIG with the paper's ImageNet preset (51 points x 100 ascent steps, lr 1e-4)",
         points=51, ascent_steps=100, lr=1e-4)

__all__ = ["METHODS", "Method", "MethodSpec", "get_method", "register"]

from .gradcam import GradCAM, GradCAMPlusPlus  # noqa: E402
from .iia import IIA  # noqa: E402
from .xrai import XRAI  # noqa: E402

register("iia", IIA)
register("iia2", IIA, "IIA2: input + last block, n=10 each (Barkan et al. 2023)", layers=("input", "last_block"))
register("iia3", IIA, "IIA3: input + penultimate + last block, n=10 each (Barkan et al. 2023)",
         layers=("input", "penultimate_block", "last_block"))
register("gradcam", GradCAM)
register("gradcam++", GradCAMPlusPlus)
register("xrai", XRAI)
