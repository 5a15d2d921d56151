// Package deploy holds deployment files for ledgerd and the tests that check
// them. The Dockerfile, .dockerignore, docker-compose.yml and .env.example
// live at the repository root; deploy_test.go statically checks that they are
// consistent with each other, with go.mod and with README.md, since no
// container engine is needed to run it.
package deploy
