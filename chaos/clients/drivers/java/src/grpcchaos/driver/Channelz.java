package grpcchaos.driver;

import grpc_chaos.driver.v1.Driver.Subchannel;
import grpc_chaos.driver.v1.Driver.SubchannelList;
import io.grpc.InternalChannelz;
import io.grpc.InternalChannelz.ChannelStats;
import io.grpc.InternalInstrumented;
import io.grpc.InternalWithLogId;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusException;
import io.grpc.netty.NettyChannelBuilder;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Subchannels from grpc-java's channelz (io.grpc.InternalChannelz, always on): each
 * subchannel's counters are its transports' streams — every attempt, retries included
 * (InternalSubchannel's CallTracingTransport).
 */
final class Channelz {
  private Channelz() {}

  private static final int PAGE = 1000;
  private static final int MAX_PAGES = 10_000;
  private static final long STATS_TIMEOUT_S = 5;
  // A subchannel's target is its address groups' text: [[host/127.0.0.11:443]/{}].
  private static final Pattern ADDRESS = Pattern.compile("/(\\d+\\.\\d+\\.\\d+\\.\\d+:\\d+)");

  /** One channel built at a time: the root channel that appears is then the one built. */
  private static final Object BUILDING = new Object();

  static final class Found {
    final ManagedChannel channel;
    final long channelzId; // 0: not found

    Found(ManagedChannel channel, long channelzId) {
      this.channel = channel;
      this.channelzId = channelzId;
    }
  }

  static Found build(NettyChannelBuilder builder) {
    synchronized (BUILDING) {
      Set<Long> before = rootIds();
      ManagedChannel channel = builder.build();
      long id = 0;
      for (long candidate : rootIds()) {
        if (!before.contains(candidate)) {
          if (id != 0) {
            return new Found(channel, 0); // another appeared too: which is which is unknown
          }
          id = candidate;
        }
      }
      return new Found(channel, id);
    }
  }

  private static Set<Long> rootIds() {
    Set<Long> ids = new HashSet<>();
    long from = 0;
    for (int page = 0; page < MAX_PAGES; page++) {
      InternalChannelz.RootChannelList list =
          InternalChannelz.instance().getRootChannels(from, PAGE);
      for (InternalInstrumented<ChannelStats> channel : list.channels) {
        long id = channel.getLogId().getId();
        ids.add(id);
        from = Math.max(from, id + 1);
      }
      if (list.end || list.channels.isEmpty()) {
        break;
      }
    }
    return ids;
  }

  /**
   * A channel's per-address counters; an address with more than one subchannel (a
   * re-resolution made a new one) gets their sums, as the runner keys by address.
   */
  static SubchannelList subchannels(long rootId) throws StatusException {
    SubchannelList.Builder list = SubchannelList.newBuilder().setNowNs(System.nanoTime());
    InternalInstrumented<ChannelStats> root = InternalChannelz.instance().getRootChannel(rootId);
    if (root == null) {
      throw Status.NOT_FOUND.withDescription("channel gone from channelz").asException();
    }
    Map<String, Subchannel.Builder> byAddress = new LinkedHashMap<>();
    for (InternalWithLogId ref : stats(root).subchannels) {
      InternalInstrumented<ChannelStats> sub =
          InternalChannelz.instance().getSubchannel(ref.getLogId().getId());
      if (sub == null) {
        continue; // shut down since the channel was read
      }
      ChannelStats data = stats(sub);
      Matcher address = ADDRESS.matcher(data.target);
      String key = address.find() ? address.group(1) : data.target;
      Subchannel.Builder s = byAddress.get(key);
      if (s == null) {
        s = Subchannel.newBuilder().setAddress(key).setState(data.state.name());
        byAddress.put(key, s);
      }
      s.setCallsStarted(s.getCallsStarted() + data.callsStarted)
          .setCallsSucceeded(s.getCallsSucceeded() + data.callsSucceeded)
          .setCallsFailed(s.getCallsFailed() + data.callsFailed);
      for (InternalWithLogId socket : data.sockets) {
        s.addSockets(socket.getLogId().getId());
      }
    }
    for (Subchannel.Builder s : byAddress.values()) {
      list.addSubchannels(s);
    }
    return list.build();
  }

  private static ChannelStats stats(InternalInstrumented<ChannelStats> of) throws StatusException {
    try {
      return of.getStats().get(STATS_TIMEOUT_S, TimeUnit.SECONDS);
    } catch (InterruptedException err) {
      Thread.currentThread().interrupt();
      throw Status.CANCELLED.withDescription("interrupted").asException();
    } catch (ExecutionException | TimeoutException err) {
      throw Status.INTERNAL.withDescription("channelz: " + err).withCause(err).asException();
    }
  }
}
