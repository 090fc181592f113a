"""oncall devops: Azure DevOps work items (Boards) and classic release pipelines."""
