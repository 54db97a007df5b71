package grpcchaos.driver;

import com.google.common.net.InetAddresses;
import io.grpc.Attributes;
import io.grpc.EquivalentAddressGroup;
import io.grpc.NameResolver;
import io.grpc.Status;
import io.grpc.SynchronizationContext;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.URI;
import java.util.ArrayList;
import java.util.Hashtable;
import java.util.List;
import java.util.concurrent.Executor;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import javax.naming.NamingEnumeration;
import javax.naming.directory.Attribute;
import javax.naming.directory.DirContext;
import javax.naming.directory.InitialDirContext;

/**
 * Resolves dns://SERVER/name:port by asking SERVER (A records) — grpc-java 1.41's own
 * DnsNameResolver ignores the target's authority (its constructor never reads it) and asks the
 * system resolver, which knows nothing of the fleet's DNS server. Without an authority
 * (dns:///name) it asks the system resolver too.
 *
 * <p>It re-resolves as grpc-java's does: on the channel's refresh() (a subchannel's failure, a
 * resolution error's backoff), unless the last successful resolution is younger than the
 * minimum interval (grpc-java: networkaddress.cache.ttl, 30 s by default,
 * DnsNameResolver.DEFAULT_NETWORK_CACHE_TTL_SECONDS) — then the refresh is dropped, not
 * deferred. Set per channel (one factory each, NettyChannelBuilder.nameResolverFactory).
 */
final class LoopbackDns extends NameResolver.Factory {
  static final long DEFAULT_MIN_INTERVAL_MS = 30_000;
  private static final String TIMEOUT_MS = "1000"; // JNDI's first try; doubled per retry
  private static final String RETRIES = "2";

  private static final ExecutorService LOOKUPS =
      Executors.newCachedThreadPool(
          task -> {
            Thread thread = new Thread(task, "dns-lookup");
            thread.setDaemon(true);
            return thread;
          });

  private final long minIntervalNanos;

  LoopbackDns(long minIntervalMs) {
    this.minIntervalNanos = TimeUnit.MILLISECONDS.toNanos(minIntervalMs);
  }

  @Override
  public String getDefaultScheme() {
    return "dns";
  }

  @Override
  public NameResolver newNameResolver(URI target, NameResolver.Args args) {
    if (!"dns".equals(target.getScheme())) {
      return null;
    }
    String path = target.getPath();
    if (path == null || !path.startsWith("/") || path.length() < 2) {
      throw new IllegalArgumentException("target " + target + ": no name to resolve");
    }
    URI name = URI.create("//" + path.substring(1));
    if (name.getHost() == null) {
      throw new IllegalArgumentException("target " + target + ": no host name in it");
    }
    int port = name.getPort() == -1 ? args.getDefaultPort() : name.getPort();
    return new Resolver(target.getAuthority(), name.getAuthority(), name.getHost(), port, args);
  }

  private final class Resolver extends NameResolver {
    private final String server; // "127.0.0.1:5353", or null: the system resolver
    private final String authority;
    private final String host;
    private final int port;
    private final SynchronizationContext sync;
    private final Executor executor;
    // Touched in sync only.
    private Listener2 listener;
    private boolean resolving;
    private boolean shutdown;
    private long lastSuccess; // System.nanoTime() when the last resolution succeeded
    private boolean resolved;

    Resolver(String server, String authority, String host, int port, NameResolver.Args args) {
      this.server = server == null || server.isEmpty() ? null : server;
      this.authority = authority;
      this.host = host;
      this.port = port;
      this.sync = args.getSynchronizationContext();
      Executor offload = args.getOffloadExecutor();
      this.executor = offload != null ? offload : LOOKUPS;
    }

    @Override
    public String getServiceAuthority() {
      return authority;
    }

    @Override
    public void start(Listener2 listener) {
      this.listener = listener;
      resolve();
    }

    @Override
    public void refresh() {
      if (resolved && System.nanoTime() - lastSuccess < minIntervalNanos) {
        return; // as grpc-java's DnsNameResolver: still cached
      }
      resolve();
    }

    @Override
    public void shutdown() {
      shutdown = true;
    }

    private void resolve() {
      if (resolving || shutdown) {
        return;
      }
      resolving = true;
      executor.execute(
          () -> {
            List<InetAddress> addresses = null;
            Status error = null;
            try {
              addresses = lookup();
            } catch (Exception err) {
              // grpc-java 1.41's DnsNameResolver's words, so a failure reads as its would.
              error =
                  Status.UNAVAILABLE.withDescription("Unable to resolve host " + host).withCause(err);
            }
            List<InetAddress> found = addresses;
            Status failed = error;
            sync.execute(() -> done(found, failed));
          });
    }

    private void done(List<InetAddress> addresses, Status error) {
      resolving = false;
      if (shutdown) {
        return;
      }
      if (error != null) {
        listener.onError(error);
        return;
      }
      resolved = true;
      lastSuccess = System.nanoTime();
      List<EquivalentAddressGroup> groups = new ArrayList<>();
      for (InetAddress address : addresses) {
        groups.add(new EquivalentAddressGroup(new InetSocketAddress(address, port)));
      }
      listener.onResult(
          ResolutionResult.newBuilder().setAddresses(groups).setAttributes(Attributes.EMPTY).build());
    }

    private List<InetAddress> lookup() throws Exception {
      List<InetAddress> addresses = new ArrayList<>();
      if (InetAddresses.isInetAddress(host)) {
        addresses.add(InetAddresses.forString(host));
        return addresses;
      }
      if (server == null) {
        for (InetAddress address : InetAddress.getAllByName(host)) {
          addresses.add(address);
        }
        return addresses;
      }
      Hashtable<String, String> env = new Hashtable<>();
      env.put(DirContext.INITIAL_CONTEXT_FACTORY, "com.sun.jndi.dns.DnsContextFactory");
      env.put(DirContext.PROVIDER_URL, "dns://" + server);
      env.put("com.sun.jndi.dns.timeout.initial", TIMEOUT_MS);
      env.put("com.sun.jndi.dns.timeout.retries", RETRIES);
      DirContext context = new InitialDirContext(env);
      try {
        Attribute records = context.getAttributes(host, new String[] {"A"}).get("A");
        if (records != null) {
          NamingEnumeration<?> values = records.getAll();
          while (values.hasMore()) {
            byte[] ip = InetAddresses.forString(values.next().toString()).getAddress();
            addresses.add(InetAddress.getByAddress(host, ip));
          }
        }
      } finally {
        context.close();
      }
      return addresses;
    }
  }
}
