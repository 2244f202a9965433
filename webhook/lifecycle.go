package webhook

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/kooflow/kooflow/koogallery"
	"github.com/kooflow/kooflow/starter"
	"github.com/kooflow/kooflow/store"
)

// nonceMemory is how long V2 nonces are remembered: well past the 60 s window.
const nonceMemory = 10 * time.Minute

// call is a verified KooGallery request, V1 or V2, in one shape.
type call struct {
	version    int
	activity   string
	instanceID string
	orderID    string
	businessID string
	customerID string
	productID  string
	expireTime string
	// status is FREEZE, or NORMAL/UNFREEZE.
	status string
	test   bool
	nonce  string
	body   []byte
	// rawQuery is the request's query as received (credentials are removed before it is stored).
	rawQuery string
}

func callFromV1(p koogallery.Params) call {
	c := call{version: 1, activity: p["activity"], instanceID: p["instanceId"], orderID: p["orderId"], businessID: p["businessId"],
		customerID: p["customerId"], productID: p["productId"], expireTime: p["expireTime"], status: p["instanceStatus"], test: p["testFlag"] == "1"}
	return c
}

func callFromV2(r koogallery.V2Request) call {
	return call{version: 2, activity: r.Activity, instanceID: r.InstanceID, orderID: r.OrderID, businessID: r.BusinessID,
		productID: r.ProductID, expireTime: r.ExpireTime, status: r.Status, test: r.TestFlag == "1"}
}

// dispatch handles a verified call by its activity.
func (h *kooGalleryHandler) dispatch(ctx context.Context, c call, out outcome) outcome {
	if c.version == 2 {
		fresh, err := h.cfg.Store.UseNonce(ctx, c.nonce, nonceMemory)
		if err != nil {
			h.cfg.Logger.Error("nonce cache unavailable", "error", err)
			return out.set(koogallery.InternalError, "store unavailable; please retry")
		}
		if !fresh {
			out.rejectReason = "auth"
			return out.set(koogallery.AuthFailed, "authentication failed: nonce "+c.nonce+" was already used")
		}
	}
	switch {
	case c.activity == "expireInstance" && c.version == 1:
		return h.expire(ctx, c, out)
	case (c.activity == "instanceStatus" && c.version == 1) || (c.activity == "updateInstanceStatus" && c.version == 2):
		switch c.status {
		case "FREEZE":
			return h.expire(ctx, c, out)
		case "NORMAL", "UNFREEZE":
			return h.unfreeze(ctx, c, out)
		}
		out.rejectReason = "malformed"
		return out.set(koogallery.InvalidParam, fmt.Sprintf("instance status %q must be FREEZE or %s", c.status, map[int]string{1: "NORMAL", 2: "UNFREEZE"}[c.version]))
	case c.activity == "newInstance":
		return h.newInstance(ctx, c, out)
	case c.activity == "refreshInstance":
		return h.refresh(ctx, c, out)
	case c.activity == "releaseInstance":
		return h.release(ctx, c, out)
	case c.activity == "queryInstance" && c.version == 2:
		return h.query(ctx, c, out)
	case c.activity == "":
		out.rejectReason = "malformed"
		return out.set(koogallery.InvalidParam, "parameter activity is required")
	}
	out.rejectReason = "malformed"
	return out.set(koogallery.InvalidParam, fmt.Sprintf("activity %q is not supported", c.activity))
}

// requireIDs checks the named identifiers of a call; the first bad one answers 000002.
func requireIDs(out *outcome, ids ...[2]string) bool {
	for _, id := range ids {
		if err := koogallery.CheckID(id[0], id[1]); err != nil {
			out.code, out.msg, out.rejectReason = koogallery.InvalidParam, err.Error(), "malformed"
			return false
		}
	}
	return true
}

// instance resolves the call's instance, answering 000003 or 000005 when it cannot.
func (h *kooGalleryHandler) instance(ctx context.Context, c call, out *outcome) (store.Subscription, bool) {
	sub, err := h.cfg.Store.SubscriptionByInstance(ctx, c.instanceID)
	if errors.Is(err, store.ErrNotFound) {
		out.rejectReason = store.RefusedUnknownInstance
		*out = out.set(koogallery.InstanceNotFound, fmt.Sprintf("instance %s does not exist", c.instanceID))
		return sub, false
	}
	if err != nil {
		h.cfg.Logger.Error("registry lookup failed", "instanceId", c.instanceID, "error", err)
		*out = out.set(koogallery.InternalError, "registry unavailable; please retry")
		return sub, false
	}
	return sub, true
}

// expire freezes an instance through the expiration workflow (expireInstance, or a
// status change to FREEZE). Idempotency key: the instance and its period.
func (h *kooGalleryHandler) expire(ctx context.Context, c call, out outcome) outcome {
	ids := [][2]string{{"instanceId", c.instanceID}}
	if c.activity == "expireInstance" {
		ids = append(ids, [2]string{"orderId", c.orderID})
	}
	if !requireIDs(&out, ids...) {
		return out
	}
	sub, ok := h.instance(ctx, c, &out)
	if !ok {
		return out
	}
	v := starter.KooGalleryExpiry(sub, c.test, time.Now())
	if !v.Accept && !v.Held() {
		out.kind, out.rule = store.DeliveryIgnored, v.Rule
		return out.set(koogallery.Success, "success. ("+v.Ignored+")")
	}
	out.workflowID = v.WorkflowID
	msg := "success."
	if v.Held() {
		// KooGallery must not retry: the expiry is kept, held for an operator.
		msg = fmt.Sprintf("success. (held for an operator: the registry has this instance running until %s and no renewal was reported)",
			sub.ExpireTime.UTC().Format(time.RFC3339))
	}
	acc, err := h.cfg.Intake.AcceptExpiry(ctx, v, h.delivery(c, out.set(koogallery.Success, msg)), "")
	if err != nil {
		h.cfg.Logger.Error("could not accept expiration", "instanceId", c.instanceID, "workflowId", v.WorkflowID, "error", err)
		return out.set(koogallery.InternalError, "store unavailable; please retry")
	}
	out.recorded = true
	switch {
	case acc.Existing:
		out.kind = store.DeliveryDuplicate
	case v.Held():
		out.kind, out.rule = store.DeliveryConflict, v.Rule
		h.cfg.Logger.Warn("expiry held for an operator: it contradicts the registry", "instanceId", c.instanceID, "workflowId", v.WorkflowID)
	default:
		h.cfg.Metrics.ExpirationsStarted.WithLabelValues(starter.SourceKooGallery).Inc()
	}
	return out.set(koogallery.Success, msg)
}

// newInstance provisions a purchase. Idempotency key: orderId. The instance ID is the
// businessId of the first call, as KooGallery recommends. V1 carries the buyer
// (customerId) and product (productId), which become carrierUserId and packageId unless
// an imported registry row for the orderId says otherwise; V2 carries neither, so its
// order must have been imported first.
func (h *kooGalleryHandler) newInstance(ctx context.Context, c call, out outcome) outcome {
	if !requireIDs(&out, [2]string{"orderId", c.orderID}, [2]string{"businessId", c.businessID}) {
		return out
	}
	sub := store.Subscription{InstanceID: c.businessID, OrderID: c.orderID, CarrierOrderID: c.orderID, CarrierUserID: c.customerID, PackageID: c.productID}
	if c.expireTime != "" {
		t, err := koogallery.ParseExpireTime(c.expireTime)
		if err != nil {
			out.rejectReason = "malformed"
			return out.set(koogallery.InvalidParam, err.Error())
		}
		sub.ExpireTime = t
	}
	if _, err := h.cfg.Store.SubscriptionByOrder(ctx, c.orderID); errors.Is(err, store.ErrNotFound) {
		if c.version == 2 {
			out.rejectReason = store.RefusedNotReady
			return out.set(koogallery.InternalError, fmt.Sprintf("order %s is not in the registry yet: import its carrierUserId and packageId (kooflow registry import); KooGallery retries for 3 hours", c.orderID))
		}
		if !requireIDs(&out, [2]string{"customerId", c.customerID}, [2]string{"productId", c.productID}) {
			return out
		}
	} else if err != nil {
		return out.set(koogallery.InternalError, "registry unavailable; please retry")
	}
	stored, _, err := h.cfg.Store.ProvisionInstance(ctx, sub)
	if err != nil {
		h.cfg.Logger.Error("could not provision instance", "instanceId", sub.InstanceID, "error", err)
		return out.set(koogallery.InternalError, "registry unavailable; please retry")
	}
	out.subject, out.instanceID = stored.InstanceID, stored.InstanceID
	return out.set(koogallery.Success, "success.")
}

// refresh is a renewal: a new expiry time; a frozen instance whose new expiry is in the
// future is unfrozen and its expiration workflows are stopped. Idempotency key: the
// renewal orderId (the same renewal sets the same expiry, which changes nothing).
func (h *kooGalleryHandler) refresh(ctx context.Context, c call, out outcome) outcome {
	if !requireIDs(&out, [2]string{"instanceId", c.instanceID}, [2]string{"orderId", c.orderID}) {
		return out
	}
	expire, err := koogallery.ParseExpireTime(c.expireTime)
	if err != nil {
		out.rejectReason = "malformed"
		return out.set(koogallery.InvalidParam, err.Error())
	}
	sub, ok := h.instance(ctx, c, &out)
	if !ok {
		return out
	}
	now := time.Now()
	res, err := h.cfg.Store.Renew(ctx, sub.ID, expire, c.orderID, now)
	if errors.Is(err, store.ErrReleased) {
		out.rejectReason = store.RefusedReleased
		return out.set(koogallery.InstanceNotFound, fmt.Sprintf("instance %s was released and cannot be renewed", c.instanceID))
	}
	if err != nil {
		return out.set(koogallery.InternalError, "registry unavailable; please retry")
	}
	if expire.After(now) {
		if err := h.stopExpirations(ctx, c.instanceID, store.StateRenewed, "renewal order "+c.orderID, &out); err != nil {
			return out.set(koogallery.InternalError, "store unavailable; please retry")
		}
	}
	msg := "success."
	if res.Unfrozen {
		msg = "success. (instance unfrozen)"
	}
	return out.set(koogallery.Success, msg)
}

// unfreeze is a status change back to normal (V1 NORMAL, V2 UNFREEZE).
func (h *kooGalleryHandler) unfreeze(ctx context.Context, c call, out outcome) outcome {
	if !requireIDs(&out, [2]string{"instanceId", c.instanceID}) {
		return out
	}
	sub, ok := h.instance(ctx, c, &out)
	if !ok {
		return out
	}
	if sub.Status == store.StatusReleased {
		out.rejectReason = store.RefusedReleased
		return out.set(koogallery.InstanceNotFound, fmt.Sprintf("instance %s was released", c.instanceID))
	}
	if _, err := h.cfg.Store.SetStatus(ctx, sub.ID, store.StatusActive, "status "+c.status); err != nil {
		return out.set(koogallery.InternalError, "registry unavailable; please retry")
	}
	if err := h.stopExpirations(ctx, c.instanceID, store.StateRenewed, "status "+c.status, &out); err != nil {
		return out.set(koogallery.InternalError, "store unavailable; please retry")
	}
	return out.set(koogallery.Success, "success.")
}

// release deletes an instance: registry status released, and any expiration still
// running for it ends. Idempotency key: instanceId.
func (h *kooGalleryHandler) release(ctx context.Context, c call, out outcome) outcome {
	if !requireIDs(&out, [2]string{"instanceId", c.instanceID}) {
		return out
	}
	sub, ok := h.instance(ctx, c, &out)
	if !ok {
		return out
	}
	if _, err := h.cfg.Store.SetStatus(ctx, sub.ID, store.StatusReleased, "order "+c.orderID); err != nil {
		return out.set(koogallery.InternalError, "registry unavailable; please retry")
	}
	if err := h.stopExpirations(ctx, c.instanceID, store.StateReleased, "released", &out); err != nil {
		return out.set(koogallery.InternalError, "store unavailable; please retry")
	}
	return out.set(koogallery.Success, "success.")
}

// stopExpirations durably records that KooGallery overtook the instance's open
// expirations; the relay delivers the stop after anything queued before it.
func (h *kooGalleryHandler) stopExpirations(ctx context.Context, instanceID, reason, detail string, out *outcome) error {
	acc, err := h.cfg.Intake.AcceptStop(ctx, starter.SourceKooGallery, instanceID, reason, detail)
	if err != nil {
		h.cfg.Logger.Error("could not record stop of expirations", "instanceId", instanceID, "error", err)
		return err
	}
	if len(acc.Cancelled) > 0 {
		out.workflowID = strings.Join(acc.Cancelled, ",")
		h.cfg.Logger.Info("queued expirations cancelled before they started", "instanceId", instanceID, "reason", reason, "workflowIds", out.workflowID)
	}
	return nil
}

// query answers V2 queryInstance with the known instances among a comma-separated list.
func (h *kooGalleryHandler) query(ctx context.Context, c call, out outcome) outcome {
	ids := strings.Split(c.instanceID, ",")
	if c.instanceID == "" || len(ids) > 100 {
		out.rejectReason = "malformed"
		return out.set(koogallery.InvalidParam, "instanceId must list 1 to 100 instance IDs, comma-separated")
	}
	for _, id := range ids {
		id = strings.TrimSpace(id)
		if !requireIDs(&out, [2]string{"instanceId", id}) {
			return out
		}
		sub, err := h.cfg.Store.SubscriptionByInstance(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return out.set(koogallery.InternalError, "registry unavailable; please retry")
		}
		out.info = append(out.info, instanceInfo{InstanceID: id, AppInfo: appInfo{FrontEndURL: h.cfg.FrontEndURL, Memo: "status " + sub.Status}})
	}
	if len(out.info) == 0 {
		out.rejectReason = store.RefusedUnknownInstance
		return out.set(koogallery.InstanceNotFound, "none of the instances exists")
	}
	return out.set(koogallery.Success, "success.")
}
