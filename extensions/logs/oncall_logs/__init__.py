"""oncall logs: Azure Log Analytics (KQL) with safely bound parameters, saved queries, e-mail transaction ids."""
