// The module a user of a generated Go client would have: TestGeneratedGoClient
// copies this folder into a temporary one, generates ledgerd.gen.go there
// from api/openapi.yaml (package ledgerdclient), then builds, vets and
// tests it against a live ledgerd. Its only dependency is the runtime the
// generated code imports.
module ledgerd.test/goclient

go 1.26.0

require (
	github.com/oapi-codegen/runtime v1.9.0
	go.yaml.in/yaml/v3 v3.0.5
)

require (
	github.com/apapsch/go-jsonmerge/v2 v2.0.0 // indirect
	github.com/google/uuid v1.6.0 // indirect
)
