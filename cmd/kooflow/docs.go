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
)

// cliReferencePath is where the CLI reference lives, from the repository's root;
// TestCLIReferenceIsCurrent fails when it differs from what `kooflow docs cli` writes.
const cliReferencePath = "docs/reference/cli.md"

//go:generate go run . docs cli -o ../../docs/reference/cli.md

// newDocsCommand is kooflow docs: the references generated from the code.
func newDocsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "docs",
		Short: "Write the references generated from the code (the CLI reference)",
	}
	var out string
	cli := &cobra.Command{
		Use:   "cli [-o FILE]",
		Short: "Write the CLI reference (Markdown): every command with its description, usage, examples and flags",
		Long: `Writes the reference of every kooflow command from the command tree itself, so it cannot
drift from the binary: ` + "`go generate ./cmd/kooflow`" + ` rewrites ` + cliReferencePath + `, and a test fails
when the committed page differs.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var page bytes.Buffer
			writeCLIReference(&page, cmd.Root())
			if out == "" || out == "-" {
				_, err := cmd.OutOrStdout().Write(page.Bytes())
				return err
			}
			if err := os.WriteFile(out, page.Bytes(), 0o644); err != nil {
				return fmt.Errorf("write the CLI reference: %w", err)
			}
			return nil
		},
	}
	cli.Flags().StringVarP(&out, "output", "o", "-", "file to write, - for standard output")
	cmd.AddCommand(cli)
	return cmd
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
