from oncall_common.frontdoor.az import loader_for
COMMAND_LOADER_CLS = loader_for("oncall_blob.operations")
