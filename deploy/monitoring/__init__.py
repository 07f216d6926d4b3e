"""Dashboards, alert rules and scrape configuration for Prometheus and Grafana (README.md)."""
