//go:build tools

// This file pins the code generator's version in go.mod, so
// `go run github.com/99designs/gqlgen generate` uses the version the code was generated with.
package main

import _ "github.com/99designs/gqlgen"
