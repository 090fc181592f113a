"""oncall alerts: Prometheus Alertmanager alerts and silences (API v2)."""
