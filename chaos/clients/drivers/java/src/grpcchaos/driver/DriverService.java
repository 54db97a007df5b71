package grpcchaos.driver;

import grpc_chaos.driver.v1.ClientDriverGrpc;
import grpc_chaos.driver.v1.Driver.CallRequest;
import grpc_chaos.driver.v1.Driver.Capabilities;
import grpc_chaos.driver.v1.Driver.ChannelConfig;
import grpc_chaos.driver.v1.Driver.ChannelRef;
import grpc_chaos.driver.v1.Driver.Closed;
import grpc_chaos.driver.v1.Driver.DescribeRequest;
import grpc_chaos.driver.v1.Driver.IdleGaps;
import grpc_chaos.driver.v1.Driver.LoadRef;
import grpc_chaos.driver.v1.Driver.LoadSpec;
import grpc_chaos.driver.v1.Driver.LoadSummary;
import grpc_chaos.driver.v1.Driver.RecordBatch;
import grpc_chaos.driver.v1.Driver.RpcRecord;
import grpc_chaos.driver.v1.Driver.SubchannelList;
import io.grpc.LoadBalancerRegistry;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.Status;
import io.grpc.StatusException;
import io.grpc.internal.GrpcUtil;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/** The ClientDriver service (proto/driver.proto) over grpc-java channels. */
final class DriverService extends ClientDriverGrpc.ClientDriverImplBase {
  static final int PROTOCOL = 1;

  /** The portable settings (Settings' field names) it maps to grpc-java's API (Channels). */
  static final List<String> SETTINGS =
      List.of(
          "keepalive_time_ms",
          "keepalive_timeout_ms",
          "keepalive_without_calls",
          "dns_min_resolution_interval_ms",
          "max_receive_message_bytes",
          "max_send_message_bytes",
          "retries");

  // Policies a service config might name; those grpc-java's registry has are listed (1.41's
  // grpc-core registers pick_first and round_robin: META-INF/services/io.grpc.LoadBalancerProvider).
  private static final List<String> KNOWN_POLICIES =
      List.of(
          "pick_first",
          "round_robin",
          "grpclb",
          "outlier_detection_experimental",
          "outlier_detection",
          "weighted_round_robin",
          "ring_hash_experimental",
          "priority_experimental");

  static final List<String> NOTES =
      List.of(
          "grpc-java 1.41's DNS resolver ignores the DNS server in dns://SERVER/name (its "
              + "DnsNameResolver never reads the target's authority): this driver resolves such "
              + "targets itself, asking SERVER for A records (JNDI), on the channel's refresh",
          "dns_min_resolution_interval_ms (default 30000, grpc-java's networkaddress.cache.ttl "
              + "default): a re-resolution asked for sooner after the last successful one is "
              + "dropped, not deferred, as grpc-java's DnsNameResolver drops it while its cache "
              + "is fresh",
          "keepalive_time_ms under 10000 is raised to 10 s and keepalive_timeout_ms under 10 to "
              + "10 ms (grpc-java's floors, KeepAliveManager.clampKeepAliveTime*InNanos); "
              + "keepalive is off unless keepalive_time_ms is set",
          "reconnect backoff cannot be set: grpc-java 1.41 has no public API for it "
              + "(ExponentialBackoffPolicy: 1 s initial, x1.6, jitter 0.2, 120 s max); "
              + "initial_reconnect_backoff_ms and max_reconnect_backoff_ms are refused",
          "min_connect_timeout_ms is refused: grpc-java 1.41 has no connect timeout of its own "
              + "(Netty's CONNECT_TIMEOUT_MILLIS, 30 s, bounds the TCP connect only)",
          "retries are on by default in grpc-java 1.41; retries=false is disableRetry(); "
              + "retryThrottling and hedgingPolicy are honoured",
          "no client-side health checking: grpc-services (HealthCheckingLoadBalancerFactory) "
              + "is not packaged in Debian, so healthCheckConfig is ignored",
          "no outlier detection: grpc-java 1.41 has no such policy",
          "max_send_message_bytes applies per call (CallOptions.withMaxOutboundMessageSize): "
              + "grpc-java has no channel-wide send limit",
          "attempts per RPC are counted with a ClientStreamTracer (one per stream grpc-java "
              + "creates: retries, hedges and transparent retries included)",
          "TLS is the JDK's (SslProvider.JDK with ALPN h2 from JDK 9+'s SSLEngine): Debian's "
              + "netty lacks netty-tcnative's native library");

  /** A channel and what its calls need beyond it. */
  static final class Chan {
    final ManagedChannel channel;
    final long channelzId; // 0: not found in channelz
    final int maxSendBytes; // -1: grpc-java's default (no limit)

    Chan(ManagedChannel channel, long channelzId, int maxSendBytes) {
      this.channel = channel;
      this.channelzId = channelzId;
      this.maxSendBytes = maxSendBytes;
    }
  }

  private final Object lock = new Object();
  private long lastId;
  private final Map<Long, Chan> channels = new HashMap<>();
  private final Map<Long, Load> loads = new HashMap<>();

  private Chan channel(long id) throws StatusException {
    synchronized (lock) {
      Chan chan = channels.get(id);
      if (chan == null) {
        throw Status.NOT_FOUND.withDescription("no channel " + id).asException();
      }
      return chan;
    }
  }

  private Load load(long id) throws StatusException {
    synchronized (lock) {
      Load load = loads.get(id);
      if (load == null) {
        throw Status.NOT_FOUND.withDescription("no load " + id).asException();
      }
      return load;
    }
  }

  @Override
  public void describe(DescribeRequest request, StreamObserver<Capabilities> response) {
    if (request.getProtocol() != PROTOCOL) {
      response.onError(
          Status.FAILED_PRECONDITION
              .withDescription(
                  "this driver speaks protocol " + PROTOCOL + ", not " + request.getProtocol())
              .asException());
      return;
    }
    Capabilities.Builder caps =
        Capabilities.newBuilder()
            .setProtocol(PROTOCOL)
            .setImplementation("grpc-java")
            .setVersion(GrpcUtil.getGrpcBuildVersion().getImplementationVersion())
            .setLanguage("java")
            .addAllSettings(SETTINGS)
            .setRetries(true)
            .setHealthCheck(false)
            .addIgnoredFields("healthCheckConfig")
            .addAllNotes(NOTES)
            .setSubchannels(true)
            // KeepAliveManager: MIN_KEEPALIVE_TIME_NANOS 10 s, MIN_KEEPALIVE_TIMEOUT_NANOS 10 ms.
            .putMinimums("keepalive_time_ms", 10_000)
            .putMinimums("keepalive_timeout_ms", 10);
    LoadBalancerRegistry registry = LoadBalancerRegistry.getDefaultRegistry();
    for (String policy : KNOWN_POLICIES) {
      if (registry.getProvider(policy) != null) {
        caps.addLbPolicies(policy);
      }
    }
    caps.setNowNs(System.nanoTime());
    response.onNext(caps.build());
    response.onCompleted();
  }

  @Override
  public void openChannel(ChannelConfig config, StreamObserver<ChannelRef> response) {
    Chan chan;
    try {
      chan = Channels.open(config);
    } catch (IllegalArgumentException | IllegalStateException err) {
      response.onError(Status.INVALID_ARGUMENT.withDescription(err.getMessage()).asException());
      return;
    }
    long id;
    synchronized (lock) {
      id = ++lastId;
      channels.put(id, chan);
    }
    response.onNext(ChannelRef.newBuilder().setId(id).build());
    response.onCompleted();
  }

  @Override
  public void closeChannel(ChannelRef ref, StreamObserver<Closed> response) {
    Chan chan;
    List<Load> closing = new ArrayList<>();
    synchronized (lock) {
      chan = channels.remove(ref.getId());
      loads.values().removeIf(
          load -> {
            if (load.channel != ref.getId()) {
              return false;
            }
            closing.add(load);
            return true;
          });
    }
    for (Load load : closing) {
      load.finish();
    }
    if (chan != null) {
      chan.channel.shutdownNow();
      try {
        chan.channel.awaitTermination(5, TimeUnit.SECONDS);
      } catch (InterruptedException err) {
        Thread.currentThread().interrupt();
      }
    }
    response.onNext(Closed.getDefaultInstance());
    response.onCompleted();
  }

  @Override
  public void subchannels(ChannelRef ref, StreamObserver<SubchannelList> response) {
    try {
      Chan chan = channel(ref.getId());
      if (chan.channelzId == 0) {
        throw Status.INTERNAL
            .withDescription("that channel was not found in channelz")
            .asException();
      }
      response.onNext(Channelz.subchannels(chan.channelzId));
      response.onCompleted();
    } catch (StatusException err) {
      response.onError(err);
    }
  }

  @Override
  public void call(CallRequest request, StreamObserver<RpcRecord> response) {
    Chan chan;
    MethodDescriptor<byte[], byte[]> method;
    Metadata.Key<String> key;
    try {
      chan = channel(request.getChannel());
      method = RawCall.method(request.getMethod());
      key = RawCall.key(request.getIdentityKey());
    } catch (StatusException err) {
      response.onError(err);
      return;
    } catch (IllegalArgumentException err) {
      response.onError(Status.INVALID_ARGUMENT.withDescription(err.getMessage()).asException());
      return;
    }
    // The record is sent from the transport's thread: a Call the runner has given up on
    // must not make that throw (grpc-java's default for a cancelled call's observer).
    ServerCallStreamObserver<RpcRecord> answer = (ServerCallStreamObserver<RpcRecord>) response;
    answer.setOnCancelHandler(() -> {}); // the RPC inherits the cancellation (its Context)
    RawCall.start(
        chan.channel,
        method,
        request.getDeadlineMs(),
        chan.maxSendBytes,
        key,
        request.getRequest().toByteArray(),
        System.nanoTime(),
        (record, ok) -> {
          if (!answer.isCancelled()) {
            answer.onNext(record.build());
            answer.onCompleted();
          }
        });
  }

  @Override
  public void startLoad(LoadSpec spec, StreamObserver<LoadRef> response) {
    MethodDescriptor<byte[], byte[]> method;
    Metadata.Key<String> key;
    try {
      if (spec.getRequestsCount() == 0) {
        throw new IllegalArgumentException("a load needs at least one request");
      }
      if (Double.isNaN(spec.getRate()) || Double.isInfinite(spec.getRate())) {
        throw new IllegalArgumentException(
            "rate " + spec.getRate() + " is not a number of RPCs a second");
      }
      if (spec.getRate() <= 0 && spec.getConcurrency() < 1) {
        throw new IllegalArgumentException("concurrency must be at least 1");
      }
      method = RawCall.method(spec.getMethod());
      key = RawCall.key(spec.getIdentityKey());
    } catch (IllegalArgumentException err) {
      response.onError(Status.INVALID_ARGUMENT.withDescription(err.getMessage()).asException());
      return;
    }
    long id;
    synchronized (lock) {
      Chan chan = channels.get(spec.getChannel());
      if (chan == null) {
        response.onError(
            Status.NOT_FOUND.withDescription("no channel " + spec.getChannel()).asException());
        return;
      }
      // Started under the lock: CloseChannel then finds it running, its workers counted.
      Load load = new Load(spec.getChannel(), chan, spec, method, key);
      load.start(spec.getRate() > 0 ? 0 : spec.getConcurrency());
      id = ++lastId;
      loads.put(id, load);
    }
    response.onNext(LoadRef.newBuilder().setId(id).build());
    response.onCompleted();
  }

  @Override
  public void setIdle(IdleGaps gaps, StreamObserver<LoadRef> response) {
    try {
      load(gaps.getLoad()).setIdle(gaps.getIdleList());
    } catch (StatusException err) {
      response.onError(err);
      return;
    }
    response.onNext(LoadRef.newBuilder().setId(gaps.getLoad()).build());
    response.onCompleted();
  }

  @Override
  public void stopLoad(LoadRef ref, StreamObserver<LoadSummary> response) {
    Load load;
    try {
      load = load(ref.getId());
    } catch (StatusException err) {
      response.onError(err);
      return;
    }
    response.onNext(load.finish());
    response.onCompleted();
  }

  @Override
  public void records(LoadRef ref, StreamObserver<RecordBatch> response) {
    Load load;
    try {
      load = load(ref.getId());
    } catch (StatusException err) {
      response.onError(err);
      return;
    }
    if (!load.claimReader()) {
      response.onError(
          Status.FAILED_PRECONDITION
              .withDescription("load " + ref.getId() + " already has a reader")
              .asException());
      return;
    }
    ServerCallStreamObserver<RecordBatch> stream =
        (ServerCallStreamObserver<RecordBatch>) response;
    stream.setOnCancelHandler(() -> {}); // the loop below sees isCancelled() instead
    try {
      // Until the load's last batch, or the reader's going: one batch per turn.
      while (!stream.isCancelled()) {
        Load.Batch batch = load.take();
        stream.onNext(batch.batch);
        if (batch.last) {
          stream.onCompleted();
          return;
        }
        load.awaitMore();
      }
    } catch (InterruptedException err) {
      Thread.currentThread().interrupt();
      stream.onError(Status.CANCELLED.withDescription("interrupted").asException());
    }
  }
}
