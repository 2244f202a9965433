package koogallery

import (
	"fmt"
	"regexp"
)

// ActivityExpireInstance is sent when a purchased product expires (spec §2.1).
const ActivityExpireInstance = "expireInstance"

var (
	idPattern        = regexp.MustCompile(`^[A-Za-z0-9._:\-]{1,64}$`)
	timeStampPattern = regexp.MustCompile(`^[0-9]{14,17}$`)
)

// CheckV1Common validates what every V1 call carries: timeStamp (UTC
// yyyyMMddHHmmssSSS) and the optional testFlag (0 or 1).
func CheckV1Common(p Params) error {
	if !timeStampPattern.MatchString(p["timeStamp"]) {
		return &ParamError{Param: "timeStamp", Reason: "must be UTC yyyyMMddHHmmssSSS"}
	}
	if flag, ok := p["testFlag"]; ok && flag != "0" && flag != "1" {
		return &ParamError{Param: "testFlag", Reason: fmt.Sprintf("must be 0 or 1, got %q", flag)}
	}
	return nil
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
