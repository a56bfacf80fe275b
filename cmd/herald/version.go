package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// version is stamped at build time with
// -ldflags "-X main.version=v1.2.3"; otherwise the module version is used.
var version = ""

// Version returns Herald's version.
func Version() string {
	if version != "" {
		return version
	}
	if info, ok := debug.ReadBuildInfo(); ok && info.Main.Version != "" && info.Main.Version != "(devel)" {
		return info.Main.Version
	}
	return "dev"
}

// VersionCmd prints the version.
type VersionCmd struct{}

// Run prints the version, Go version and platform.
func (VersionCmd) Run(env *Env) error {
	_, err := fmt.Fprintln(env.Stdout, versionLine())
	return err
}

// versionLine is what herald version and herald --version print.
func versionLine() string {
	return fmt.Sprintf("herald %s (%s %s/%s)", Version(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
