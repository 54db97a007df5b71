package grpcchaos.driver;

import grpc_chaos.driver.v1.Driver.Gap;
import grpc_chaos.driver.v1.Driver.LoadSpec;
import grpc_chaos.driver.v1.Driver.LoadSummary;
import grpc_chaos.driver.v1.Driver.RecordBatch;
import grpc_chaos.driver.v1.Driver.RpcRecord;
import io.grpc.Context;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;

/**
 * One StartLoad: RPCs on a channel until finish(), their records queued for Records.
 *
 * <p>Closed loop: {@code concurrency} workers, each an RPC in flight whose end starts the next
 * (no thread each: the RPCs are asynchronous). Open loop: a launcher thread at the spec's
 * rate. Starting an RPC (its clock reading, the idle check and its entry in inFlight),
 * queueing its record (and leaving inFlight) and forming a batch all hold {@code lock}: a
 * batch's account of what is in flight is exact, and seq order is end_ns order.
 */
final class Load {
  static final int BATCH_MAX = 512; // records per RecordBatch message
  static final int DEFAULT_MAX_IN_FLIGHT = 1024; // open loop, when the spec sets no limit
  // A batch at least this often while a load runs, empty if nothing ended: the protocol's.
  static final long HEARTBEAT_NS = TimeUnit.MILLISECONDS.toNanos(100);
  // How long a record may wait for others to share its batch.
  static final long FLUSH_NS = TimeUnit.MILLISECONDS.toNanos(10);

  // Idle gaps' and failure pauses' ends, for closed-loop workers.
  private static final ScheduledThreadPoolExecutor TIMERS = timers();

  private static ScheduledThreadPoolExecutor timers() {
    ScheduledThreadPoolExecutor timers =
        new ScheduledThreadPoolExecutor(
            1,
            task -> {
              Thread thread = new Thread(task, "load-timers");
              thread.setDaemon(true);
              return thread;
            });
    timers.setRemoveOnCancelPolicy(true);
    return timers;
  }

  final long channel; // the channel's id, for CloseChannel
  private final DriverService.Chan chan;
  private final MethodDescriptor<byte[], byte[]> method;
  private final Metadata.Key<String> key;
  private final byte[][] requests;
  private final long deadlineMs;
  private final long pauseNs;
  private final double rate;
  private final long maxInFlight;

  private final ReentrantLock lock = new ReentrantLock();
  private final Condition more = lock.newCondition(); // the reader: records, or the end
  private final Condition changed = lock.newCondition(); // finish and the launcher
  private List<Gap> idle;
  private long launched; // RPCs started, which picks the request each sends
  private final HashMap<Long, Long> inFlight = new HashMap<>(); // launch number -> start_ns
  private final ArrayDeque<RpcRecord> queued = new ArrayDeque<>();
  private long seq;
  private long completed;
  private long skipped;
  private boolean reader;
  private boolean readerWaiting;
  private boolean stopping; // start no more RPCs
  private boolean done; // every RPC has ended and its record is queued
  private int running; // closed loop: live workers; open loop: the launcher + RPCs in flight
  private final Map<Object, ScheduledFuture<?>> waiting = new HashMap<>(); // workers' timers

  Load(
      long channelId,
      DriverService.Chan chan,
      LoadSpec spec,
      MethodDescriptor<byte[], byte[]> method,
      Metadata.Key<String> key) {
    this.channel = channelId;
    this.chan = chan;
    this.method = method;
    this.key = key;
    this.requests = new byte[spec.getRequestsCount()][];
    for (int i = 0; i < requests.length; i++) {
      requests[i] = spec.getRequests(i).toByteArray();
    }
    this.deadlineMs = spec.getDeadlineMs();
    this.pauseNs = TimeUnit.MICROSECONDS.toNanos(Math.max(0, spec.getFailurePauseUs()));
    this.rate = spec.getRate();
    this.maxInFlight = spec.getMaxInFlight() == 0 ? DEFAULT_MAX_IN_FLIGHT : spec.getMaxInFlight();
    this.idle = new ArrayList<>(spec.getIdleList());
  }

  /** Starts its workers (or launcher). */
  void start(int concurrency) {
    if (rate > 0) {
      running = 1;
      Thread launcher = new Thread(this::openLoop, "open-loop");
      launcher.setDaemon(true);
      launcher.start();
      return;
    }
    lock.lock();
    try {
      running = concurrency;
    } finally {
      lock.unlock();
    }
    for (int i = 0; i < concurrency; i++) {
      RawCall.trampoline(this::step);
    }
  }

  void setIdle(List<Gap> gaps) {
    lock.lock();
    try {
      idle = new ArrayList<>(gaps);
    } finally {
      lock.unlock();
    }
  }

  /** What is left of an idle gap at a clock reading; 0 outside gaps. Holds lock. */
  private long idleLeft(long at) {
    for (Gap gap : idle) {
      if (gap.getStartNs() <= at && at < gap.getEndNs()) {
        return gap.getEndNs() - at;
      }
    }
    return 0;
  }

  /** A closed-loop worker's next move: an RPC, a wait out of an idle gap, or its end. */
  private void step() {
    long n;
    long start;
    lock.lock();
    try {
      if (stopping) {
        workerEnded();
        return;
      }
      start = System.nanoTime(); // the idle check and start_ns: one clock reading
      long left = idleLeft(start);
      if (left > 0) {
        later(left);
        return;
      }
      n = launched++;
      inFlight.put(n, start);
    } finally {
      lock.unlock();
    }
    launch(
        n,
        start,
        ok -> {
          if (!ok && pauseNs > 0) {
            lock.lock();
            try {
              later(pauseNs); // a fleet that fails fast must not spin a core
            } finally {
              lock.unlock();
            }
          } else {
            RawCall.trampoline(this::step);
          }
        });
  }

  /** This worker steps again after delayNs, unless the load stops first. Holds lock. */
  private void later(long delayNs) {
    if (stopping) {
      workerEnded();
      return;
    }
    Object token = new Object();
    // The task takes the lock before it looks: it cannot run before the put.
    waiting.put(
        token,
        TIMERS.schedule(
            () -> {
              lock.lock();
              try {
                if (waiting.remove(token) == null) {
                  return; // finish() has ended this worker
                }
              } finally {
                lock.unlock();
              }
              RawCall.trampoline(this::step);
            },
            delayNs,
            TimeUnit.NANOSECONDS));
  }

  /** Holds lock. */
  private void workerEnded() {
    if (--running == 0) {
      changed.signalAll();
    }
  }

  private interface After {
    void ended(boolean ok);
  }

  private void launch(long n, long start, After after) {
    int index = (int) (n % requests.length);
    // In the root context: a call inherits the current one's cancellation, and StartLoad's
    // (the server call that started the workers) is cancelled once it has answered.
    Context previous = Context.ROOT.attach();
    try {
      RawCall.start(
        chan.channel,
        method,
        deadlineMs,
        chan.maxSendBytes,
        key,
        requests[index],
        start,
          (record, ok) -> {
            record.setRequestIndex(index);
            add(n, record);
            after.ended(ok);
          });
    } finally {
      Context.ROOT.detach(previous);
    }
  }

  /**
   * The open loop: RPCs at the spec's rate, a launch skipped (and counted) when
   * max_in_flight are outstanding; late ticks are made up at once, as the Python driver does.
   */
  private void openLoop() {
    long interval = (long) (1e9 / rate);
    long next = System.nanoTime();
    lock.lock();
    try {
      while (!stopping) {
        long start = System.nanoTime();
        if (idleLeft(start) == 0) {
          if (inFlight.size() >= maxInFlight) {
            skipped++;
          } else {
            long n = launched++;
            inFlight.put(n, start);
            running++;
            lock.unlock();
            try {
              launch(n, start, ok -> {});
            } finally {
              lock.lock();
            }
          }
        }
        next += interval;
        // Until the next tick, or the stop: bounded by the tick's time.
        for (long left = next - System.nanoTime(); left > 0 && !stopping; ) {
          left = changed.awaitNanos(left);
        }
      }
    } catch (InterruptedException err) {
      Thread.currentThread().interrupt();
    } finally {
      workerEnded();
      lock.unlock();
    }
  }

  private void add(long n, RpcRecord.Builder record) {
    lock.lock();
    try {
      inFlight.remove(n);
      record.setEndNs(System.nanoTime()); // again under the lock: seq order is end_ns order
      record.setSeq(++seq);
      completed++;
      queued.add(record.build());
      if (rate > 0) {
        workerEnded(); // an open-loop RPC counts as running until its record is queued
      }
      if (readerWaiting) {
        more.signal();
      }
    } finally {
      lock.unlock();
    }
  }

  /** Stops the load; returns once every RPC it started has ended and been queued. */
  LoadSummary finish() {
    lock.lock();
    try {
      stopping = true;
      for (ScheduledFuture<?> timer : waiting.values()) {
        timer.cancel(false);
        workerEnded();
      }
      waiting.clear();
      changed.signalAll(); // the launcher
      // Until the RPCs in flight end (each ends by its deadline, or the channel's close).
      while (running > 0) {
        changed.awaitUninterruptibly();
      }
      done = true;
      more.signalAll();
      return LoadSummary.newBuilder().setCompleted(completed).setSkipped(skipped).build();
    } finally {
      lock.unlock();
    }
  }

  boolean claimReader() {
    lock.lock();
    try {
      boolean claimed = !reader;
      reader = true;
      return claimed;
    } finally {
      lock.unlock();
    }
  }

  /** The next batch, and whether it is the last. */
  static final class Batch {
    final RecordBatch batch;
    final boolean last;

    Batch(RecordBatch batch, boolean last) {
      this.batch = batch;
      this.last = last;
    }
  }

  /**
   * The next batch: up to BATCH_MAX queued records, stamped with now and the start of the
   * oldest RPC not accounted for (in flight, or ended but left for a later batch).
   */
  Batch take() {
    lock.lock();
    try {
      boolean finished = done; // once done, every record is in the queue
      RecordBatch.Builder batch = RecordBatch.newBuilder().setSentNs(System.nanoTime());
      for (int i = 0; i < BATCH_MAX && !queued.isEmpty(); i++) {
        batch.addRecords(queued.poll());
      }
      long since = 0;
      for (long start : inFlight.values()) {
        since = earliest(since, start);
      }
      for (RpcRecord record : queued) {
        since = earliest(since, record.getStartNs());
      }
      batch.setInFlightSinceNs(since);
      return new Batch(batch.build(), finished && queued.isEmpty());
    } finally {
      lock.unlock();
    }
  }

  /**
   * Waits for something to send: records (then a little longer, FLUSH_NS, for others to
   * share their batch), the load's end, or the heartbeat's time.
   */
  void awaitMore() throws InterruptedException {
    lock.lock();
    try {
      if (queued.size() >= BATCH_MAX || done) {
        return;
      }
      readerWaiting = true;
      try {
        for (long left = HEARTBEAT_NS; left > 0 && queued.isEmpty() && !done; ) {
          left = more.awaitNanos(left);
        }
      } finally {
        readerWaiting = false;
      }
      for (long left = FLUSH_NS; left > 0 && !queued.isEmpty() && !done; ) {
        left = more.awaitNanos(left);
      }
    } finally {
      lock.unlock();
    }
  }

  /** The earlier of two starts, 0 standing for none. */
  private static long earliest(long a, long b) {
    return a == 0 || b < a ? b : a;
  }
}
