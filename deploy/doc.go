// Package deploy holds deployment files for ledgerd and the tests that check
// them. The Dockerfile, .dockerignore, docker-compose.yml and .env.example
// live at the repository root; this folder has the monitoring and
// Kubernetes files:
//
//   - prometheus.yml: the Prometheus configuration of the Compose stack
//     (scrapes both ledgerd replicas, RabbitMQ's rabbitmq_prometheus plugin
//     and itself);
//   - haproxy.cfg: the Compose stack's balancer, round-robin over the two
//     ledgerd replicas (the tests check its backend names both);
//   - alerts.yml: the alerting rules, each with a runbook_url to its
//     section of docs/operations.md, and alerts_test.yml, their promtool
//     unit tests;
//   - grafana/: the ledgerd dashboard, in Grafana's export format (a
//     DS_PROMETHEUS input, $datasource and $job variables) so that it
//     imports into any Grafana, and the provisioning of it and of the
//     Prometheus datasource in the Compose stack;
//   - k8s/: Kubernetes manifests (ConfigMap, Secret placeholders,
//     Deployment, Service, PodDisruptionBudget, migration Job) and their
//     kustomization, which any cluster accepts; k8s/monitoring/: the
//     Prometheus Operator's ServiceMonitor, apart because it needs the
//     Operator's CRDs.
//
// The tests check the files statically, since no container engine, Grafana
// or cluster is needed to run them: consistency with each other, with
// go.mod, cmd/ledgerd's settings, the metrics ledgerd exposes, README.md
// and docs/operations.md; the dashboard's datasource variable is resolved
// as Grafana resolves it, once provisioned and once imported; no image is
// :latest. TestExternalCheckers also runs promtool (check config, check
// rules, test rules, and the dashboard's queries) and docker-compose
// config, and fails when those tools are not installed.
package deploy
