package koogallery

import (
	"fmt"
	"regexp"
)

// Activity names kooflow understands on the produce endpoint.
const (
	// ActivityExpireInstance is sent when a purchased product expires (spec §2.1).
	ActivityExpireInstance = "expireInstance"
)

// ExpireRequest is a verified V1 expireInstance call.
type ExpireRequest struct {
	// InstanceID is the instance kooflow returned at purchase.
	InstanceID string
	// OrderID is the original purchase order.
	OrderID string
	// Test is true for Seller Console debugging calls (testFlag=1).
	Test bool
	// TimeStamp is KooGallery's raw yyyyMMddHHmmssSSS request time.
	TimeStamp string
}

var (
	idPattern        = regexp.MustCompile(`^[A-Za-z0-9._:\-]{1,64}$`)
	timeStampPattern = regexp.MustCompile(`^[0-9]{14,17}$`)
)

// ParseExpire validates the parameters of an expireInstance call (already verified).
func ParseExpire(p Params) (ExpireRequest, error) {
	req := ExpireRequest{
		InstanceID: p["instanceId"],
		OrderID:    p["orderId"],
		TimeStamp:  p["timeStamp"],
		Test:       p["testFlag"] == "1",
	}
	if err := checkID("instanceId", req.InstanceID); err != nil {
		return ExpireRequest{}, err
	}
	if err := checkID("orderId", req.OrderID); err != nil {
		return ExpireRequest{}, err
	}
	if !timeStampPattern.MatchString(req.TimeStamp) {
		return ExpireRequest{}, &ParamError{Param: "timeStamp", Reason: "must be UTC yyyyMMddHHmmssSSS"}
	}
	if flag, ok := p["testFlag"]; ok && flag != "0" && flag != "1" {
		return ExpireRequest{}, &ParamError{Param: "testFlag", Reason: fmt.Sprintf("must be 0 or 1, got %q", flag)}
	}
	return req, nil
}

func checkID(name, value string) error {
	if value == "" {
		return &ParamError{Param: name, Reason: "is required"}
	}
	if !idPattern.MatchString(value) {
		return &ParamError{Param: name, Reason: "must be 1-64 characters of letters, digits and . _ : -"}
	}
	return nil
}
