"""oncall devops: Azure DevOps work items and classic releases."""
from oncall_common.frontdoor.az import loader_for
COMMAND_LOADER_CLS = loader_for("oncall_devops.operations")
