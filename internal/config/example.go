package config

import _ "embed"

// example is example.yaml. A string, so it cannot be changed.
//
//go:embed example.yaml
var example string

// Example returns a complete, commented example config (gatewise.yaml),
// every setting shown with its default or a typical value. It passes
// Validate; `gatewise config defaults` prints it.
func Example() string {
	return example
}
