"""oncall k8s: logs across pods, restarts with reasons, events, self-healing port-forward; Alertmanager reached
inside a cluster through the API server's service proxy (``oncall_k8s.proxy.service_proxy_http``)."""
