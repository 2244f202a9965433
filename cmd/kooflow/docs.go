package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/kooflow/kooflow/settings"
)

// cliReferencePath and configurationPath are where the generated references live, from
// the repository's root; TestReferencesAreCurrent fails when either differs from what
// `kooflow docs cli` and `kooflow docs config` write.
const (
	cliReferencePath  = "docs/reference/cli.md"
	configurationPath = "docs/configuration.md"
)

//go:generate go run . docs cli -o ../../docs/reference/cli.md
//go:generate go run . docs config -o ../../docs/configuration.md

// newDocsCommand is kooflow docs: the references generated from the code.
func newDocsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "docs",
		Short: "Write the references generated from the code: the CLI reference and the configuration",
	}
	cmd.AddCommand(newDocsPageCommand("cli", "Write the CLI reference (Markdown): every command with its description, usage, examples and flags",
		`Writes the reference of every kooflow command from the command tree itself, so it cannot
drift from the binary: `+"`go generate ./cmd/kooflow`"+` rewrites `+cliReferencePath+`, and a test fails
when the committed page differs.`, func(w io.Writer, cmd *cobra.Command) { writeCLIReference(w, cmd.Root()) }))
	cmd.AddCommand(newDocsPageCommand("config", "Write the configuration reference (Markdown): every environment variable kooflow reads",
		`Writes every setting from the one table the code keeps (package settings): name, the
processes that read it, its default, where it is required, whether it is a secret, and its
meaning. `+"`go generate ./cmd/kooflow`"+` rewrites `+configurationPath+`; a test fails when the
committed page differs, and another when the code reads a variable the table lacks.`, func(w io.Writer, _ *cobra.Command) { writeConfigurationReference(w) }))
	return cmd
}

// newDocsPageCommand is kooflow docs <name>: it writes one generated page to -o.
func newDocsPageCommand(name, short, long string, write func(io.Writer, *cobra.Command)) *cobra.Command {
	var out string
	page := &cobra.Command{
		Use:   name + " [-o FILE]",
		Short: short,
		Long:  long,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var b bytes.Buffer
			write(&b, cmd)
			if out == "" || out == "-" {
				_, err := cmd.OutOrStdout().Write(b.Bytes())
				return err
			}
			if err := os.WriteFile(out, b.Bytes(), 0o644); err != nil {
				return fmt.Errorf("write the %s reference: %w", name, err)
			}
			return nil
		},
	}
	page.Flags().StringVarP(&out, "output", "o", "-", "file to write, - for standard output")
	return page
}

// writeCLIReference writes root's commands as one Markdown page: a table of contents by
// the headings of `kooflow --help`, then a section per command, depth first.
func writeCLIReference(w io.Writer, root *cobra.Command) {
	fmt.Fprintf(w, "# kooflow command reference\n\n")
	fmt.Fprintf(w, "Generated from the command tree by `go generate ./cmd/kooflow` (`kooflow docs cli`); do not edit.\n")
	fmt.Fprintf(w, "`kooflow <command> --help` prints the same.\n\n")
	for _, g := range root.Groups() {
		fmt.Fprintf(w, "**%s**", strings.TrimSuffix(g.Title, ":"))
		for _, c := range root.Commands() {
			if c.GroupID == g.ID && documented(c) {
				fmt.Fprintf(w, " [%s](#%s)", c.Name(), anchor(c))
			}
		}
		fmt.Fprintf(w, "\n\n")
	}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			if !documented(sub) {
				continue
			}
			writeCommand(w, sub)
			walk(sub)
		}
	}
	walk(root)
}

// documented leaves out Cobra's own help and completion commands and hidden ones.
func documented(c *cobra.Command) bool {
	return !c.Hidden && c.Name() != "help" && c.Name() != "completion"
}

// anchor is the heading anchor a forge gives the command's section.
func anchor(c *cobra.Command) string {
	return strings.ReplaceAll(c.CommandPath(), " ", "-")
}

func writeCommand(w io.Writer, c *cobra.Command) {
	fmt.Fprintf(w, "## %s\n\n%s.\n\n", c.CommandPath(), strings.TrimSuffix(c.Short, "."))
	if c.Long != "" {
		fmt.Fprintf(w, "%s\n\n", strings.TrimSpace(c.Long))
	}
	if c.Runnable() {
		fmt.Fprintf(w, "```\n%s\n```\n\n", c.UseLine())
	}
	var subs []string
	for _, sub := range c.Commands() {
		if documented(sub) {
			subs = append(subs, fmt.Sprintf("[%s](#%s)", sub.Name(), anchor(sub)))
		}
	}
	if len(subs) > 0 {
		fmt.Fprintf(w, "Commands: %s.\n\n", strings.Join(subs, ", "))
	}
	if c.Example != "" {
		fmt.Fprintf(w, "Examples:\n\n```\n%s\n```\n\n", c.Example)
	}
	if flags := flagsBut(c, "help").FlagUsages(); strings.TrimSpace(flags) != "" {
		fmt.Fprintf(w, "Flags:\n\n```\n%s```\n\n", flags)
	}
}

// flagsBut is c's own flags without the named ones (Cobra adds --help only to the
// command it runs, so the reference leaves it out everywhere).
func flagsBut(c *cobra.Command, names ...string) *pflag.FlagSet {
	fs := pflag.NewFlagSet(c.Name(), pflag.ContinueOnError)
	c.NonInheritedFlags().VisitAll(func(f *pflag.Flag) {
		if !slices.Contains(names, f.Name) {
			fs.AddFlag(f)
		}
	})
	return fs
}

// writeConfigurationReference writes the settings table as docs/configuration.md: a
// table per group.
func writeConfigurationReference(w io.Writer) {
	fmt.Fprintf(w, "# Configuration\n\n")
	fmt.Fprintf(w, "Every environment variable kooflow reads, by topic. Generated from the table in\n")
	fmt.Fprintf(w, "`settings/settings.go` by `go generate ./cmd/kooflow` (`kooflow docs config`); do not edit.\n\n")
	fmt.Fprintf(w, "A process refuses to start without a variable it requires, with a message naming it.\n")
	fmt.Fprintf(w, "Secrets are never logged or shown; give each as a file (its `_FILE` variable) where one exists,\n")
	fmt.Fprintf(w, "so it is not in the process's environment. Command-line flags override their variables.\n")
	for _, group := range settings.Groups {
		fmt.Fprintf(w, "\n## %s\n\n| variable | read by | default | required by | meaning |\n|---|---|---|---|---|\n", group)
		for _, s := range settings.All {
			if s.Group != group {
				continue
			}
			name := "`" + s.Name + "`"
			if s.Secret {
				name += " (secret)"
			}
			fmt.Fprintf(w, "| %s | %s | %s | %s | %s |\n", name, s.Processes, orDash(s.Default), orDash(s.Required), s.Meaning)
		}
	}
}

// orDash writes a table cell: a dash when empty, a single value as code.
func orDash(s string) string {
	switch {
	case s == "":
		return "—"
	case !strings.ContainsAny(s, " `"):
		return "`" + s + "`"
	}
	return s
}
