"""The registry of named methods. A new method: one file with a Method subclass, one line here.

Path methods that accept several aggregators get ``<name>+<aggregator>`` names derived by
:func:`register` (``ig`` gives ``ig+idgi``); presets are registered with their options.
"""
from .ablationcam import AblationCAM
from .attention_rollout import AttentionRollout
from .base import METHODS, Method, MethodSpec, get_method, register, unregister
from .blur_ig import BlurIG
from .fullgrad import FullGrad
from .gae import GAE
from .ggig import GGIG
from .gradcam import GradCAM, GradCAMPlusPlus
from .gradient import Gradient
from .gradient_rollout import GradientRollout
from .guided_ig import GuidedIG
from .ig import IntegratedGradients
from .iia import IIA
from .iia_vit import IIAViT
from .layercam import LayerCAM
from .learned import Learned
from .liftcam import LIFTCAM
from .lrp import LRP
from .occlusion import Occlusion
from .path import CustomPath
from .rise import RISE
from .scorecam import ScoreCAM
from .smooth import SmoothGrad
from .t_attr import TAttr
from .xgradcam import XGradCAM
from .xrai import XRAI

register("gradient", Gradient)
register("ig", IntegratedGradients)
register("guided_ig", GuidedIG)
register("blur_ig", BlurIG)
register("path", CustomPath)
register("ggig", GGIG, "GGIG, fast default (20 steps x 10 ascent steps, lr 1e-4)")
# the authors' ImageNet script: 51 points x 100 ascent steps at lr 1e-4 (5,100 gradients per image);
# the paper's text gives lr 1e-4 with 200 steps, for MNIST
register("ggig_paper", GGIG, "GGIG with the authors' ImageNet preset (51 steps x 100 ascent steps, lr 1e-4)",
         steps=51, ascent_steps=100, lr=1e-4)
register("iia", IIA)
register("iia2", IIA, "IIA2: input + last block, n=10 each (Barkan et al. 2023)", layers=("input", "last_block"))
register("iia3", IIA, "IIA3: input + penultimate + last block, n=10 each (Barkan et al. 2023)",
         layers=("input", "penultimate_block", "last_block"))
register("gradcam", GradCAM)
register("gradcam++", GradCAMPlusPlus)
register("xrai", XRAI)
register("smooth", SmoothGrad)
register("learned", Learned)
register("layercam", LayerCAM)
register("xgradcam", XGradCAM)
register("liftcam", LIFTCAM)
register("ablationcam", AblationCAM)
register("scorecam", ScoreCAM)
register("fullgrad", FullGrad)
register("occlusion", Occlusion)
register("rise", RISE)
register("attention_rollout", AttentionRollout)
register("gradient_rollout", GradientRollout)
register("gae", GAE)
register("lrp", LRP)
register("t_attr", TAttr)
register("iia_vit", IIAViT)
register("iia2_vit", IIAViT, "IIA2 for ViTs: input + last block's attention, n=10 each (Barkan et al. 2023, Table 2)",
         layers=("input", "last_block"))
register("iia3_vit", IIAViT, "IIA3 for ViTs: input + penultimate + last block's attention, n=10 each (Table 2)",
         layers=("input", "penultimate_block", "last_block"))

__all__ = ["METHODS", "Method", "MethodSpec", "get_method", "register", "unregister"]
