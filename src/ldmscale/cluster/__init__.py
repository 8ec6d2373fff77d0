"""Kubernetes and Argo Server clients for submitting, following and stopping sweeps."""
