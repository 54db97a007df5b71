package grpcchaos.driver;

import grpc_chaos.driver.v1.Driver.ChannelConfig;
import grpc_chaos.driver.v1.Driver.Settings;
import io.grpc.ManagedChannel;
import io.grpc.internal.JsonParser;
import io.grpc.netty.NettyChannelBuilder;
import io.netty.handler.ssl.JdkAlpnShim;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslContextBuilder;
import io.netty.handler.ssl.SslProvider;
import java.io.File;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import javax.net.ssl.SSLException;

/** A ChannelConfig made a grpc-java channel, or refused (IllegalArgumentException). */
final class Channels {
  private Channels() {}

  static DriverService.Chan open(ChannelConfig config) {
    if (!config.getOptionsMap().isEmpty()) {
      throw new IllegalArgumentException(
          "options: grpc-java takes no implementation-specific options (got "
              + config.getOptionsMap().keySet().iterator().next() + ")");
    }
    NettyChannelBuilder builder =
        NettyChannelBuilder.forTarget(config.getTarget())
            .sslContext(sslContext(config))
            // The listeners run on the transport's thread: a record costs no hand-over, and
            // a closed-loop worker starts its next RPC from there (Load, RawCall.trampoline).
            .directExecutor();
    if (!config.getServiceConfigJson().isEmpty()) {
      builder.defaultServiceConfig(serviceConfig(config.getServiceConfigJson()));
    }
    // The profile's service config is the channel's: none is looked up (nor in DNS).
    builder.disableServiceConfigLookUp();
    Settings s = config.getSettings();
    builder.nameResolverFactory(
        new LoopbackDns(
            s.hasDnsMinResolutionIntervalMs()
                ? positive("dns_min_resolution_interval_ms", s.getDnsMinResolutionIntervalMs())
                : LoopbackDns.DEFAULT_MIN_INTERVAL_MS));
    refuse(s.hasInitialReconnectBackoffMs(), "initial_reconnect_backoff_ms",
        "grpc-java 1.41 has no public API for its reconnect backoff");
    refuse(s.hasMaxReconnectBackoffMs(), "max_reconnect_backoff_ms",
        "grpc-java 1.41 has no public API for its reconnect backoff");
    refuse(s.hasMinConnectTimeoutMs(), "min_connect_timeout_ms",
        "grpc-java 1.41 has no connect timeout of its own");
    if (s.hasKeepaliveTimeMs()) {
      builder.keepAliveTime(positive("keepalive_time_ms", s.getKeepaliveTimeMs()),
          TimeUnit.MILLISECONDS);
    }
    if (s.hasKeepaliveTimeoutMs()) {
      builder.keepAliveTimeout(positive("keepalive_timeout_ms", s.getKeepaliveTimeoutMs()),
          TimeUnit.MILLISECONDS);
    }
    if (s.hasKeepaliveWithoutCalls()) {
      builder.keepAliveWithoutCalls(s.getKeepaliveWithoutCalls());
    }
    if (s.hasMaxReceiveMessageBytes()) {
      builder.maxInboundMessageSize(messageBytes(s.getMaxReceiveMessageBytes()));
    }
    int maxSend = s.hasMaxSendMessageBytes() ? messageBytes(s.getMaxSendMessageBytes()) : -1;
    if (s.hasRetries()) {
      if (s.getRetries()) {
        builder.enableRetry();
      } else {
        builder.disableRetry();
      }
    }
    // build() checks the default service config ("Default config is invalid: ...") and the
    // target (no resolver for it): IllegalArgumentException or IllegalStateException.
    Channelz.Found found = Channelz.build(builder);
    return new DriverService.Chan(found.channel, found.channelzId, maxSend);
  }

  private static void refuse(boolean set, String field, String why) {
    if (set) {
      throw new IllegalArgumentException("settings." + field + ": " + why);
    }
  }

  private static long positive(String field, long ms) {
    if (ms <= 0) {
      throw new IllegalArgumentException(
          "settings." + field + ": " + ms + " is not a positive number of milliseconds");
    }
    return ms;
  }

  /** A negative size as C core's -1 reads, profiles being written for grpcio: no limit. */
  private static int messageBytes(long n) {
    return n < 0 || n > Integer.MAX_VALUE ? Integer.MAX_VALUE : (int) n;
  }

  @SuppressWarnings("unchecked")
  private static Map<String, ?> serviceConfig(String json) {
    Object parsed;
    try {
      parsed = JsonParser.parse(json);
    } catch (IOException | RuntimeException err) {
      throw new IllegalArgumentException("service_config_json is not JSON: " + err.getMessage());
    }
    if (!(parsed instanceof Map)) {
      throw new IllegalArgumentException("service_config_json is not a JSON object");
    }
    return (Map<String, ?>) parsed;
  }

  private static SslContext sslContext(ChannelConfig config) {
    if (config.getCertFile().isEmpty() != config.getKeyFile().isEmpty()) {
      throw new IllegalArgumentException("cert_file and key_file go together");
    }
    SslContextBuilder tls = SslContextBuilder.forClient().sslProvider(SslProvider.JDK);
    try {
      if (!config.getCaFile().isEmpty()) {
        tls.trustManager(readable("ca_file", config.getCaFile()));
      }
      if (!config.getCertFile().isEmpty()) {
        // The fleet's keys are PEM PKCS#8 (fleet/pki.py), which netty reads.
        tls.keyManager(
            readable("cert_file", config.getCertFile()), readable("key_file", config.getKeyFile()));
      }
      return JdkAlpnShim.h2(tls.build());
    } catch (SSLException | RuntimeException err) {
      if (err instanceof IllegalArgumentException) {
        throw (IllegalArgumentException) err;
      }
      throw new IllegalArgumentException("TLS: " + err.getMessage(), err);
    }
  }

  private static File readable(String field, String path) {
    if (!Files.isReadable(Path.of(path)) || Files.isDirectory(Path.of(path))) {
      throw new IllegalArgumentException(field + " " + path + ": not a readable file");
    }
    return new File(path);
  }
}
