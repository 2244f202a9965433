package koogallery

// ResultCode is a KooGallery invocation result code (spec §5).
type ResultCode string

// The common result codes. Anything but Success makes KooGallery retry for an hour.
const (
	// Success: the call was handled (or had already been handled).
	Success ResultCode = "000000"
	// AuthFailed: the authToken or signature did not verify.
	AuthFailed ResultCode = "000001"
	// InvalidParam: a parameter is missing or invalid, or the activity is not supported.
	InvalidParam ResultCode = "000002"
	// InstanceNotFound: the instance ID is unknown.
	InstanceNotFound ResultCode = "000003"
	// Processing: the request is being handled asynchronously.
	Processing ResultCode = "000004"
	// InternalError: anything else; KooGallery will retry.
	InternalError ResultCode = "000005"
)

// Result is the JSON body of every answer to KooGallery.
type Result struct {
	// ResultCode is one of the codes above.
	ResultCode ResultCode `json:"resultCode"`
	// ResultMsg explains the code, at most 255 characters.
	ResultMsg string `json:"resultMsg"`
}
