"""m2se: multimodal sentiment and emotion analysis with multimodal LLMs (InternVL + LoRA, two stages)."""

import logging
import warnings


def _quiet_optional_kernels(record: logging.LogRecord) -> bool:
    # bitsandbytes (imported by peft even when nothing is quantized) warns on every CPU start that an
    # optional 4-bit CPU kernel package is missing; m2se never runs 4-bit on the CPU.
    return "gemm_4bit_forward" not in record.getMessage()


logging.getLogger("bitsandbytes.backends.cpu.ops").addFilter(_quiet_optional_kernels)


def _no_cloud_tips(record: logging.LogRecord) -> bool:
    # Lightning advertises its cloud logger and model registry ("💡 Tip: ...") at every run.
    return not record.getMessage().startswith("💡 Tip")


logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(_no_cloud_tips)


# m2se's messages print themselves (stdout / stderr) and propagate to Hydra's run log (m2se.logs).
from m2se.logs import install_console  # noqa: E402

install_console(logging.getLogger("m2se"))

# Third-party deprecation chatter that a user can do nothing about (every entry point imports m2se).
warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)
warnings.filterwarnings("ignore", message=".*isinstance\\(treespec, LeafSpec\\)` is deprecated")
