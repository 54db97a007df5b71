package main

import (
	"context"
	"sync"
	"time"

	driverpb "grpcchaos/driver/v1"

	"google.golang.org/grpc"
)

const (
	batchMax           = 512  // records per RecordBatch message
	defaultMaxInFlight = 1024 // open loop, when the spec sets no limit
	// A batch at least this often while a load runs, empty if nothing ended: the protocol's.
	heartbeatInterval = 100 * time.Millisecond
)

// load is one StartLoad: RPCs on a channel until finish, their records queued for Records.
type load struct {
	spec     *driverpb.LoadSpec
	unary    unary
	channel  uint64
	stop     chan struct{} // closed: start no more RPCs
	done     chan struct{} // closed: every RPC has ended and its record is queued
	stopOnce sync.Once
	doneOnce sync.Once
	running  sync.WaitGroup // workers, the open-loop launcher and the RPCs it started

	queuedMore chan struct{} // a record was queued (holds one wake-up)

	// Starting an RPC (its clock reading and its entry in inFlight), queueing its record
	// (and leaving inFlight) and forming a batch all hold mu: a batch's account of what is
	// in flight is exact.
	mu        sync.Mutex
	launched  uint64           // RPCs started, which picks the request each sends
	inFlight  map[uint64]int64 // launch number -> start_ns
	queued    []*driverpb.RpcRecord
	seq       uint64
	completed uint64
	skipped   uint64
	reader    bool
}

func startLoad(spec *driverpb.LoadSpec, cc *grpc.ClientConn) *load {
	l := &load{
		spec:       spec,
		unary:      unary{cc, spec.Method, time.Duration(spec.DeadlineMs) * time.Millisecond, spec.IdentityKey},
		channel:    spec.Channel,
		stop:       make(chan struct{}),
		done:       make(chan struct{}),
		queuedMore: make(chan struct{}, 1),
		inFlight:   map[uint64]int64{},
	}
	if spec.Rate > 0 {
		l.running.Add(1)
		go l.openLoop()
		return l
	}
	l.running.Add(int(spec.Concurrency))
	for i := uint32(0); i < spec.Concurrency; i++ {
		go l.worker()
	}
	return l
}

func (l *load) stopped() bool {
	select {
	case <-l.stop:
		return true
	default:
		return false
	}
}

// wait returns after d, or at once when the load is stopped.
func (l *load) wait(d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-l.stop:
	}
}

// setIdle replaces the gaps; under mu, as every RPC start reads them.
func (l *load) setIdle(gaps []*driverpb.Gap) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.spec.Idle = gaps
}

// idleLeft is how much of an idle gap is left at a CLOCK_MONOTONIC reading; 0 outside gaps.
// The caller holds mu.
func (l *load) idleLeft(at int64) time.Duration {
	for _, gap := range l.spec.Idle {
		if gap.StartNs <= at && at < gap.EndNs {
			return time.Duration(gap.EndNs - at)
		}
	}
	return 0
}

// one makes the next RPC, unless an idle gap holds: then it returns what is left of the
// gap. The gap check and start_ns are one clock reading, so no RPC starts inside a gap.
func (l *load) one() (ok bool, idle time.Duration) {
	l.mu.Lock()
	start := nowNs()
	if idle := l.idleLeft(start); idle > 0 {
		l.mu.Unlock()
		return false, idle
	}
	n := l.launched
	l.launched++
	l.inFlight[n] = start
	l.mu.Unlock()
	index := n % uint64(len(l.spec.Requests))
	// Not the StartLoad call's context: the load outlives it, and StopLoad lets RPCs end.
	record := l.unary.call(context.Background(), start, l.spec.Requests[index])
	record.RequestIndex = uint32(index)
	l.add(n, record)
	return record.Code == "OK", 0
}

// worker is one RPC in flight of a closed loop.
func (l *load) worker() {
	defer l.running.Done()
	pause := time.Duration(l.spec.FailurePauseUs) * time.Microsecond
	for !l.stopped() {
		ok, idle := l.one()
		if idle > 0 {
			l.wait(idle)
		} else if !ok {
			l.wait(pause) // a fleet that fails fast must not spin a core
		}
	}
}

// openLoop starts RPCs at the spec's rate, skipping (and counting) a launch when
// max_in_flight are outstanding. Late ticks are made up at once, as the Python driver does.
func (l *load) openLoop() {
	defer l.running.Done()
	limit := l.spec.MaxInFlight
	if limit == 0 {
		limit = defaultMaxInFlight
	}
	slots := make(chan struct{}, limit)
	interval := int64(float64(time.Second) / l.spec.Rate)
	next := nowNs()
	for !l.stopped() {
		select {
		case slots <- struct{}{}:
			l.running.Add(1)
			go func() {
				defer l.running.Done()
				l.one()
				<-slots
			}()
		default:
			l.mu.Lock()
			l.skipped++
			l.mu.Unlock()
		}
		next += interval
		l.wait(time.Duration(next - nowNs()))
	}
}

func (l *load) add(n uint64, record *driverpb.RpcRecord) {
	l.mu.Lock()
	delete(l.inFlight, n)
	// Read again under the lock, so that seq order and end_ns order agree.
	record.EndNs = nowNs()
	l.seq++
	record.Seq = l.seq
	l.completed++
	l.queued = append(l.queued, record)
	l.mu.Unlock()
	select {
	case l.queuedMore <- struct{}{}:
	default: // a wake-up is already pending
	}
}

// finish stops the load and returns once every RPC it started has ended and been queued.
func (l *load) finish() *driverpb.LoadSummary {
	l.stopOnce.Do(func() { close(l.stop) })
	l.running.Wait()
	l.doneOnce.Do(func() { close(l.done) })
	l.mu.Lock()
	defer l.mu.Unlock()
	return &driverpb.LoadSummary{Completed: l.completed, Skipped: l.skipped}
}

func (l *load) claimReader() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	claimed := !l.reader
	l.reader = true
	return claimed
}

// take forms the next batch: up to batchMax queued records, stamped with now and the start
// of the oldest RPC not accounted for (in flight, or ended but left for a later batch). It
// also says whether the load is over and this is the last batch.
func (l *load) take() (*driverpb.RecordBatch, bool) {
	// Read before the queue: once done is closed, every record is already in it.
	var finished bool
	select {
	case <-l.done:
		finished = true
	default:
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	batch := &driverpb.RecordBatch{SentNs: nowNs()}
	n := len(l.queued)
	if n > batchMax {
		n = batchMax
	}
	batch.Records = l.queued[:n:n]
	if n == len(l.queued) {
		l.queued = nil // lets the drained array go
	} else {
		l.queued = l.queued[n:]
	}
	for _, start := range l.inFlight {
		batch.InFlightSinceNs = earliest(batch.InFlightSinceNs, start)
	}
	for _, record := range l.queued {
		batch.InFlightSinceNs = earliest(batch.InFlightSinceNs, record.StartNs)
	}
	return batch, finished && l.queued == nil
}

// earliest of two starts, 0 standing for none.
func earliest(a, b int64) int64 {
	if a == 0 || b < a {
		return b
	}
	return a
}
