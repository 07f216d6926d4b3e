// promcheck: Prometheus' own checks of this folder's rules and queries, without a Prometheus.
//
//	promcheck rules FILE...   what `promtool check rules` checks: each file through
//	                          rulefmt.ParseFile (strict YAML, every expr parsed, every `for`,
//	                          label and annotation template checked), then no two rules with
//	                          the same name and labels (promtool's duplicate-rule lint)
//	promcheck exprs           a JSON list of PromQL expressions on stdin; prints, for each, the
//	                          parser's error (if any) and the metric names its selectors use
//	promcheck functions       the PromQL functions this parser knows, as a JSON list
//
// Built by deploy/monitoring/check.py from the Prometheus module pinned in go.mod (go.sum holds
// every hash), into .cache/monitoring/. It is not promtool itself: promtool links every service
// discovery and builds in 4 to 7 minutes here, this in about 1.5.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/prometheus/common/model"
	"github.com/prometheus/common/promslog"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
)

var promql = parser.NewParser(parser.Options{})

func checkRules(files []string) int {
	failed := 0
	for _, file := range files {
		groups, errs := rulefmt.ParseFile(file, false, model.UTF8Validation, promql, promslog.NewNopLogger())
		for _, err := range errs {
			fmt.Fprintln(os.Stderr, err)
		}
		if len(errs) > 0 {
			failed++
			continue
		}
		seen := map[string]bool{}
		rules := 0
		for _, group := range groups.Groups {
			for _, rule := range group.Rules {
				rules++
				name := rule.Alert + rule.Record
				key := name + "\x00" + labelKey(group.Labels, rule.Labels)
				if seen[key] {
					fmt.Fprintf(os.Stderr, "%s: duplicate rule %s with the same labels\n", file, name)
					failed++
				}
				seen[key] = true
			}
		}
		fmt.Printf("%s: %d rules found\n", file, rules)
	}
	if failed > 0 {
		return 1
	}
	return 0
}

func labelKey(maps ...map[string]string) string {
	merged := map[string]string{}
	for _, m := range maps {
		for k, v := range m {
			merged[k] = v
		}
	}
	keys := make([]string, 0, len(merged))
	for k := range merged {
		keys = append(keys, k+"="+merged[k])
	}
	sort.Strings(keys)
	return strings.Join(keys, "\x00")
}

type parsed struct {
	Expr    string   `json:"expr"`
	Error   string   `json:"error,omitempty"`
	Metrics []string `json:"metrics"`
}

func checkExprs(in io.Reader, out io.Writer) int {
	var exprs []string
	if err := json.NewDecoder(in).Decode(&exprs); err != nil {
		fmt.Fprintln(os.Stderr, "stdin: a JSON list of strings expected:", err)
		return 2
	}
	results := make([]parsed, 0, len(exprs))
	for _, text := range exprs {
		result := parsed{Expr: text, Metrics: []string{}}
		expr, err := promql.ParseExpr(text)
		if err != nil {
			result.Error = err.Error()
		} else {
			names := map[string]bool{}
			parser.Inspect(expr, func(node parser.Node, _ []parser.Node) error {
				if selector, ok := node.(*parser.VectorSelector); ok {
					names[selector.Name] = true
				}
				return nil
			})
			for name := range names {
				result.Metrics = append(result.Metrics, name)
			}
			sort.Strings(result.Metrics)
		}
		results = append(results, result)
	}
	if err := json.NewEncoder(out).Encode(results); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	return 0
}

func functions(out io.Writer) int {
	names := make([]string, 0, len(parser.Functions))
	for name := range parser.Functions {
		names = append(names, name)
	}
	sort.Strings(names)
	if err := json.NewEncoder(out).Encode(names); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	return 0
}

func main() {
	usage := "usage: promcheck rules FILE... | promcheck exprs < exprs.json | promcheck functions"
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, usage)
		os.Exit(2)
	}
	switch os.Args[1] {
	case "rules":
		if len(os.Args) < 3 {
			fmt.Fprintln(os.Stderr, usage)
			os.Exit(2)
		}
		os.Exit(checkRules(os.Args[2:]))
	case "exprs":
		os.Exit(checkExprs(os.Stdin, os.Stdout))
	case "functions":
		os.Exit(functions(os.Stdout))
	default:
		fmt.Fprintln(os.Stderr, usage)
		os.Exit(2)
	}
}
