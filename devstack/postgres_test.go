package devstack_test

import (
	"context"
	"database/sql"
	"net/url"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/kooflow/kooflow/devstack"
	"github.com/kooflow/kooflow/devstack/devstacktest"
)

var searchAttributes = map[string]enumspb.IndexedValueType{
	"KooflowInstanceId": enumspb.INDEXED_VALUE_TYPE_KEYWORD,
	"KooflowState":      enumspb.INDEXED_VALUE_TYPE_KEYWORD,
}

func startStack(t *testing.T, dataDir, db string, shards int32) (*devstack.Stack, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	return devstack.Start(ctx, devstack.Options{DataDir: dataDir, UIPort: -1, SearchAttributes: searchAttributes, DB: db, HistoryShards: shards})
}

func dial(t *testing.T, s *devstack.Stack) client.Client {
	t.Helper()
	c, err := client.Dial(client.Options{HostPort: s.HostPort(), Namespace: s.Namespace()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// clusterInfo asks the running server which stores and how many shards it runs on.
func clusterInfo(t *testing.T, c client.Client) *workflowservice.GetClusterInfoResponse {
	t.Helper()
	info, err := c.WorkflowService().GetClusterInfo(context.Background(), &workflowservice.GetClusterInfoRequest{})
	if err != nil {
		t.Fatal(err)
	}
	return info
}

// TestPostgres starts the stack on PostgreSQL with 4 history shards — on an existing
// but empty database and a missing visibility database — uses a custom search attribute
// in a visibility query, starts it again on the now existing schema, and refuses
// another shard count for the same cluster.
func TestPostgres(t *testing.T) {
	db := devstacktest.PostgresURL(t)
	// The default store's database exists but is empty; devstack creates the other.
	u, _ := url.Parse(db)
	maintenance := *u
	maintenance.Path = "/postgres"
	admin, err := sql.Open("pgx", maintenance.String())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(`CREATE DATABASE "` + strings.TrimPrefix(u.Path, "/") + `"`); err != nil {
		t.Fatal(err)
	}
	admin.Close()
	dataDir := t.TempDir()

	s, err := startStack(t, dataDir, db, 4)
	if err != nil {
		t.Fatalf("first start on a new database: %v", err)
	}
	t.Logf("Temporal persistence: %s", s.Persistence())
	c := dial(t, s)
	info := clusterInfo(t, c)
	if info.GetHistoryShardCount() != 4 || !strings.HasPrefix(info.GetPersistenceStore(), "postgres") || !strings.HasPrefix(info.GetVisibilityStore(), "postgres") {
		t.Fatalf("server reports persistence %q, visibility %q, %d shards; want PostgreSQL for both and 4 shards",
			info.GetPersistenceStore(), info.GetVisibilityStore(), info.GetHistoryShardCount())
	}
	// No worker: the start alone writes the visibility record the query must find.
	run, err := c.ExecuteWorkflow(context.Background(), client.StartWorkflowOptions{
		ID: "devstack-pg-1", TaskQueue: "devstack-test",
		TypedSearchAttributes: temporal.NewSearchAttributes(temporal.NewSearchAttributeKeyKeyword("KooflowInstanceId").ValueSet("inst-pg-1")),
	}, "SomeWorkflow")
	if err != nil {
		t.Fatalf("start with a custom search attribute: %v", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := c.ListWorkflow(context.Background(), &workflowservice.ListWorkflowExecutionsRequest{Query: `KooflowInstanceId = "inst-pg-1"`})
		if err != nil {
			t.Fatalf("visibility query on a custom search attribute: %v", err)
		}
		if len(resp.GetExecutions()) == 1 && resp.GetExecutions()[0].GetExecution().GetRunId() == run.GetRunID() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("visibility query found %d executions, want the one started", len(resp.GetExecutions()))
		}
		time.Sleep(200 * time.Millisecond)
	}
	c.Close()
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}

	// Again on the existing schema, keeping the cluster's count when none is asked for.
	s, err = startStack(t, dataDir, db, 0)
	if err != nil {
		t.Fatalf("second start on the existing schema: %v", err)
	}
	c = dial(t, s)
	if got := clusterInfo(t, c).GetHistoryShardCount(); got != 4 {
		t.Errorf("second start runs %d shards, want the cluster's 4", got)
	}
	if _, err := c.DescribeWorkflowExecution(context.Background(), "devstack-pg-1", ""); err != nil {
		t.Errorf("the workflow started before the restart: %v", err)
	}
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}

	_, err = startStack(t, dataDir, db, 8)
	if err == nil || !strings.Contains(err.Error(), "created with 4 history shards") || !strings.Contains(err.Error(), "--history-shards 4") {
		t.Fatalf("start with 8 shards on a 4-shard cluster: got %v, want a refusal naming 4 shards and what to do", err)
	}
	t.Logf("refused as expected: %v", err)
}

// TestSQLiteRefusesShards: SQLite runs a single history shard.
func TestSQLiteRefusesShards(t *testing.T) {
	_, err := startStack(t, t.TempDir(), "", 4)
	if err == nil || !strings.Contains(err.Error(), "PostgreSQL") {
		t.Fatalf("SQLite with 4 shards: got %v, want a refusal", err)
	}
}
