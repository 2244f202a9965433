package contract

import (
	"fmt"
	"regexp"
	"strconv"
	"time"
)

// cyclePattern is a billing cycle: a month, yyyy-MM.
var cyclePattern = regexp.MustCompile(`^([0-9]{4})-(0[1-9]|1[0-2])$`)

// CycleBounds returns the first instant of the cycle and of the month after it, in UTC.
func CycleBounds(cycle string) (time.Time, time.Time, error) {
	m := cyclePattern.FindStringSubmatch(cycle)
	if m == nil {
		return time.Time{}, time.Time{}, fmt.Errorf("billing cycle %q is not yyyy-MM", cycle)
	}
	year, _ := strconv.Atoi(m[1])
	month, _ := strconv.Atoi(m[2])
	start := time.Date(year, time.Month(month), 1, 0, 0, 0, 0, time.UTC)
	return start, start.AddDate(0, 1, 0), nil
}

// CheckPastCycle refuses a cycle that is not over at now.
func CheckPastCycle(cycle string, now time.Time) error {
	_, end, err := CycleBounds(cycle)
	if err != nil {
		return err
	}
	current := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
	if end.After(current) {
		return fmt.Errorf("billing cycle %s is not over yet: KooDrive accepts only past cycles (the latest is %s)", cycle, PreviousCycle(now))
	}
	return nil
}

// PreviousCycle is the month before t's month, as yyyy-MM.
func PreviousCycle(t time.Time) string {
	first := time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, t.Location())
	return first.AddDate(0, -1, 0).Format("2006-01")
}
