package e2e

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/kooflow/kooflow/contract"
	"github.com/kooflow/kooflow/devapp"
	"github.com/kooflow/kooflow/koogallery"
	"github.com/kooflow/kooflow/payloadcodec"
	"github.com/kooflow/kooflow/starter"
	"github.com/kooflow/kooflow/store"
)

// newPayloadKey returns a fresh payload key entry, id:base64key.
func newPayloadKey(t testing.TB, id string) string {
	t.Helper()
	entry, err := payloadcodec.NewKeyEntry(id)
	if err != nil {
		t.Fatal(err)
	}
	return entry
}

// codecFor is the payload codec of a KOOFLOW_PAYLOAD_KEYS value.
func codecFor(t testing.TB, keys string) *payloadcodec.Codec {
	t.Helper()
	ring, err := payloadcodec.ParseKeys(keys)
	if err != nil {
		t.Fatal(err)
	}
	return payloadcodec.NewCodec(ring)
}

// rawClient dials the embedded Temporal with the SDK's default converters: what anyone
// who reads Temporal's database or API without kooflow's keys gets.
func (e *env) rawClient() client.Client {
	e.t.Helper()
	c, err := client.Dial(client.Options{HostPort: e.app.Stack.HostPort(), Namespace: e.app.Stack.Namespace()})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(c.Close)
	return c
}

// rawHistory is workflowID's history as the server stores it, read without the codec.
func (e *env) rawHistory(c client.Client, workflowID string) *historypb.History {
	e.t.Helper()
	iter := c.GetWorkflowHistory(context.Background(), workflowID, "", false, 0)
	hist := &historypb.History{}
	for iter.HasNext() {
		ev, err := iter.Next()
		if err != nil {
			e.t.Fatalf("read history of %s: %v", workflowID, err)
		}
		hist.Events = append(hist.Events, ev)
	}
	return hist
}

// keyIDs counts the payloads in m, a history or another message, by encryption key id
// ("" for a payload in clear). Search attributes are left out: the server indexes them,
// so they cannot be encrypted (and carry no personal data; see
// TestPayloadsAreEncryptedAtRest).
func keyIDs(m proto.Message) map[string]int {
	ids := map[string]int{}
	var walk func(proto.Message)
	walk = func(m proto.Message) {
		if _, ok := m.(*commonpb.SearchAttributes); ok {
			return
		}
		if p, ok := m.(*commonpb.Payload); ok {
			ids[string(p.GetMetadata()["encryption-key-id"])]++
			return
		}
		r := m.ProtoReflect()
		r.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
			switch {
			case fd.IsList() && fd.Message() != nil:
				for i := 0; i < v.List().Len(); i++ {
					walk(v.List().Get(i).Message().Interface())
				}
			case fd.IsMap() && fd.MapValue().Message() != nil:
				v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
					walk(mv.Message().Interface())
					return true
				})
			case fd.Message() != nil && !fd.IsList() && !fd.IsMap():
				walk(v.Message().Interface())
			}
			return true
		})
	}
	walk(m)
	return ids
}

// TestPayloadsAreEncryptedAtRest: with payload encryption on, what Temporal persists and
// serves for an expiration — its history and its visibility record (search attributes,
// memo, summary) — holds none of the subscriber's personal data (carrier user ID, ICCID,
// order ID, package ID), read through the raw API without the codec; through the codec
// the input decodes to them.
func TestPayloadsAreEncryptedAtRest(t *testing.T) {
	codec := codecFor(t, newPayloadKey(t, "at-rest"))
	e := newEnvWith(t, func(o *devapp.Options) { o.PayloadCodec = codec })
	const (
		instance, instUser, instPackage, order = "inst-private", "pii-user-4711", "pii-package-4711", "CS-pii-order-4711"
		iccid, simPackage, simUser             = "8986001234567890123", "PKG-PII", "pii-sim-user-0815"
	)
	e.importSubscriptions(
		store.Subscription{InstanceID: instance, CarrierUserID: instUser, PackageID: instPackage, OrderID: order},
		store.Subscription{GIccid: iccid, PackageCode: simPackage, CarrierUserID: simUser, PackageID: "pii-sim-package"},
	)
	if a := e.expire(instance, map[string]string{"orderId": order}); a.Result.ResultCode != koogallery.Success {
		t.Fatalf("expire: %+v", a)
	}
	if status, body := e.sendPush(smartHubKey, expiredPush("ev-pii", iccid, simPackage)); status != 200 {
		t.Fatalf("push: %d %v", status, body)
	}
	instID := starter.ExpirationWorkflowID(contract.ExpirationInput{Source: starter.SourceKooGallery, Subject: instance, Period: "current"})
	simID := e.simWorkflowID(iccid, simPackage, "20261101080000")
	e.waitState(instID, store.StateReserved, 30*time.Second)
	e.waitState(simID, store.StateReserved, 30*time.Second)

	secrets := []string{instUser, instPackage, order, iccid, simUser, "pii-sim-package"}
	raw := e.rawClient()
	for _, id := range []string{instID, simID} {
		hist := e.rawHistory(raw, id)
		b, err := proto.Marshal(hist)
		if err != nil {
			t.Fatal(err)
		}
		desc, err := raw.DescribeWorkflowExecution(context.Background(), id, "")
		if err != nil {
			t.Fatal(err)
		}
		d, err := proto.Marshal(desc)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range secrets {
			if bytes.Contains(b, []byte(s)) {
				t.Errorf("the stored history of %s contains %q in clear", id, s)
			}
			if bytes.Contains(d, []byte(s)) {
				t.Errorf("the visibility record of %s (search attributes, memo, summary) contains %q in clear", id, s)
			}
		}
		ids := keyIDs(hist)
		if ids[""] != 0 || ids["at-rest"] == 0 {
			t.Errorf("payloads of %s by key id: %v; want every one under at-rest", id, ids)
		}

		// Through the codec, the input is the subscriber's.
		started := hist.GetEvents()[0].GetWorkflowExecutionStartedEventAttributes()
		decoded, err := codec.Decode(started.GetInput().GetPayloads())
		if err != nil {
			t.Fatalf("decode the input of %s: %v", id, err)
		}
		want := instUser
		if id == simID {
			want = simUser
		}
		if !bytes.Contains(decoded[0].GetData(), []byte(want)) {
			t.Errorf("decoded input of %s = %s, want it to name %s", id, decoded[0].GetData(), want)
		}
	}
}

// TestPayloadKeyRotation: an expiration started under key A and stalled keeps running
// after the keys become B,A (B encrypts, A still decrypts): the operator's retry reaches
// it and it completes, with its later payloads under B. A client without the key the
// answer is under gets an error naming that key id.
func TestPayloadKeyRotation(t *testing.T) {
	keyA, keyB, keyC := newPayloadKey(t, "key-a"), newPayloadKey(t, "key-b"), newPayloadKey(t, "key-c")
	codec := codecFor(t, keyA)
	e := newEnvWith(t, func(o *devapp.Options) { o.PayloadCodec = codec })
	e.importSubscriptions(store.Subscription{InstanceID: "inst-rotate", CarrierUserID: "user-rotate", PackageID: "pkg-rotate"})
	e.kd.RejectWith("10020001", "carrier is not whitelisted")
	if a := e.expire("inst-rotate", nil); a.Result.ResultCode != koogallery.Success {
		t.Fatalf("expire: %+v", a)
	}
	id := starter.ExpirationWorkflowID(contract.ExpirationInput{Source: starter.SourceKooGallery, Subject: "inst-rotate", Period: "current"})
	e.waitState(id, store.StateStalled, 30*time.Second)

	e.stop()
	codec = codecFor(t, keyB+","+keyA)
	e.start()
	e.kd.ClearFaults()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.app.Starter.Retry(ctx, id); err != nil {
		t.Fatalf("retry after the rotation: %v", err)
	}
	e.waitState(id, store.StateReserved, 30*time.Second)
	ids := keyIDs(e.rawHistory(e.rawClient(), id))
	if ids["key-a"] == 0 || ids["key-b"] == 0 || ids[""] != 0 {
		t.Fatalf("payloads by key id: %v; want key-a before the rotation, key-b after, none in clear", ids)
	}

	// A reader holding only key C cannot read the status the worker encrypts under B,
	// and is told which key it lacks.
	other, err := client.Dial(client.Options{HostPort: e.app.Stack.HostPort(), Namespace: e.app.Stack.Namespace(),
		DataConverter: payloadcodec.DataConverter(codecFor(t, keyC))})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	v, err := other.QueryWorkflow(ctx, id, "", contract.QueryStatus)
	if err == nil {
		var status contract.ExpirationStatus
		err = v.Get(&status)
	}
	if err == nil || !strings.Contains(err.Error(), `key id "key-b"`) {
		t.Fatalf("status read with only key-c: %v; want an error naming key id key-b", err)
	}
}
