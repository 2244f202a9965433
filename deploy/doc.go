// Package deploy holds the production-like stack's configuration (Prometheus, Grafana,
// Temporal setup scripts) and the tests that check docker-compose.yml without a Docker
// engine.
package deploy
