package grpcchaos.driver;

import com.google.protobuf.ByteString;
import grpc_chaos.driver.v1.Driver.RpcRecord;
import io.grpc.CallOptions;
import io.grpc.Channel;
import io.grpc.ClientCall;
import io.grpc.ClientStreamTracer;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.Status;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.util.ArrayDeque;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/** One unary RPC with raw bytes in and out, ended with its record (asynchronously). */
final class RawCall {
  private RawCall() {}

  /** Called once, when the RPC has ended: its record (end_ns set, seq and index not). */
  interface Ended {
    void ended(RpcRecord.Builder record, boolean ok);
  }

  /** The runner's serialized requests as they are, and the answers' bytes as they came. */
  static final MethodDescriptor.Marshaller<byte[]> BYTES =
      new MethodDescriptor.Marshaller<byte[]>() {
        @Override
        public InputStream stream(byte[] value) {
          return new ByteArrayInputStream(value);
        }

        @Override
        public byte[] parse(InputStream stream) {
          try {
            return stream.readAllBytes();
          } catch (IOException err) {
            throw Status.INTERNAL
                .withDescription("reading the response: " + err)
                .withCause(err)
                .asRuntimeException();
          }
        }
      };

  private static final ConcurrentHashMap<String, MethodDescriptor<byte[], byte[]>> METHODS =
      new ConcurrentHashMap<>();

  /** The unary method "/package.Service/Method" names; IllegalArgumentException otherwise. */
  static MethodDescriptor<byte[], byte[]> method(String name) {
    if (!name.startsWith("/") || name.indexOf('/', 1) < 2 || name.endsWith("/")) {
      throw new IllegalArgumentException(
          "method " + name + " is not of the form /package.Service/Method");
    }
    return METHODS.computeIfAbsent(
        name,
        n ->
            MethodDescriptor.<byte[], byte[]>newBuilder(BYTES, BYTES)
                .setType(MethodDescriptor.MethodType.UNARY)
                .setFullMethodName(n.substring(1))
                .build());
  }

  /** The metadata key naming the backend ("" for none); IllegalArgumentException if bad. */
  static Metadata.Key<String> key(String name) {
    if (name.isEmpty()) {
      return null;
    }
    if (name.endsWith(Metadata.BINARY_HEADER_SUFFIX)) {
      throw new IllegalArgumentException("identity_key " + name + ": a binary key");
    }
    return Metadata.Key.of(name, Metadata.ASCII_STRING_MARSHALLER);
  }

  /**
   * Counts the attempts of one RPC: grpc-java makes a stream tracer for each stream it
   * creates (first attempt, retries, hedges, transparent retries, and the failing stream of
   * a call the picker fails).
   */
  private static final class Attempts extends ClientStreamTracer.Factory {
    private static final ClientStreamTracer NOTHING = new ClientStreamTracer() {};
    final AtomicInteger count = new AtomicInteger();

    @Override
    public ClientStreamTracer newClientStreamTracer(
        ClientStreamTracer.StreamInfo info, Metadata headers) {
      count.incrementAndGet();
      return NOTHING;
    }
  }

  /**
   * Starts one RPC; {@code start} is the clock reading the caller took just before. The
   * listener may be called on this thread (a call that fails at once) or a transport's.
   */
  static void start(
      Channel channel,
      MethodDescriptor<byte[], byte[]> method,
      long deadlineMs,
      int maxSendBytes,
      Metadata.Key<String> key,
      byte[] request,
      long start,
      Ended ended) {
    Attempts attempts = new Attempts();
    CallOptions options = CallOptions.DEFAULT.withStreamTracerFactory(attempts);
    if (deadlineMs > 0) {
      options = options.withDeadlineAfter(deadlineMs, TimeUnit.MILLISECONDS);
    }
    if (maxSendBytes >= 0) {
      options = options.withMaxOutboundMessageSize(maxSendBytes);
    }
    ClientCall<byte[], byte[]> call = channel.newCall(method, options);
    call.start(
        new ClientCall.Listener<byte[]>() {
          // The listener's callbacks are serialized: no field needs more than that.
          private long headersNs;
          private String backend = "";
          private byte[] response;

          @Override
          public void onHeaders(Metadata headers) {
            headersNs = System.nanoTime();
            if (key != null) {
              String value = headers.get(key);
              if (value != null) {
                backend = value;
              }
            }
          }

          @Override
          public void onMessage(byte[] message) {
            response = message;
          }

          @Override
          public void onClose(Status status, Metadata trailers) {
            long end = System.nanoTime();
            if (key != null && backend.isEmpty()) {
              String value = trailers.get(key);
              if (value != null) {
                backend = value;
              }
            }
            RpcRecord.Builder record =
                RpcRecord.newBuilder()
                    .setStartNs(start)
                    .setEndNs(end)
                    .setCode(status.getCode().name())
                    .setMessage(message(status))
                    .setBackend(backend)
                    .setHeadersNs(headersNs)
                    .setAttempts(attempts.count.get());
            boolean ok = status.isOk();
            if (ok && response != null) {
              record.setResponse(ByteString.copyFrom(response));
            }
            try {
              ended.ended(record, ok);
            } catch (RuntimeException err) {
              // Never into the transport's thread (the listener runs there: directExecutor).
              System.err.println("grpc-chaos-java-driver: recording an RPC failed: " + err);
              err.printStackTrace();
            }
          }
        },
        new Metadata());
    try {
      call.request(2); // as grpc-java's ClientCalls: a second message is an error
      call.sendMessage(request);
      call.halfClose();
    } catch (RuntimeException err) {
      call.cancel("sending the request failed", err); // onClose then reports it
    }
  }

  /**
   * The status description, and the exception that caused it: grpc-java keeps the cause
   * (an SSLHandshakeException naming the bad certificate, an UnknownHostException) out of
   * the description, in the StatusRuntimeException's cause, which is what an application
   * logs with it. The deepest cause is the one that names the problem.
   */
  private static String message(Status status) {
    String description = status.getDescription();
    Throwable root = status.getCause();
    for (int depth = 0; root != null && root.getCause() != null && depth < 16; depth++) {
      root = root.getCause();
    }
    if (root == null) {
      return description != null ? description : "";
    }
    return description != null ? description + " (caused by " + root + ")" : root.toString();
  }

  private static final ThreadLocal<ArrayDeque<Runnable>> TRAMPOLINE = new ThreadLocal<>();

  /**
   * Runs {@code next} now, or after the task this thread is already running: a closed-loop
   * worker starts its next RPC from the last one's listener, which runs inside call.start()
   * when a call fails at once, so calling it directly would nest one frame per RPC.
   */
  static void trampoline(Runnable next) {
    ArrayDeque<Runnable> queue = TRAMPOLINE.get();
    if (queue != null) {
      queue.add(next);
      return;
    }
    queue = new ArrayDeque<>();
    TRAMPOLINE.set(queue);
    try {
      for (Runnable task = next; task != null; task = queue.poll()) {
        task.run();
      }
    } finally {
      TRAMPOLINE.remove();
    }
  }
}
