package grpcchaos.driver;

import com.google.protobuf.ByteString;
import grpc_chaos.driver.v1.ClientDriverGrpc;
import grpc_chaos.driver.v1.Driver.CallRequest;
import grpc_chaos.driver.v1.Driver.ChannelConfig;
import grpc_chaos.driver.v1.Driver.ChannelRef;
import grpc_chaos.driver.v1.Driver.DescribeRequest;
import io.grpc.ManagedChannel;
import io.grpc.netty.NettyChannelBuilder;
import java.util.concurrent.TimeUnit;

/**
 * The build's class-archive run (Main --warm-up): what a session's start loads — the server,
 * Describe, a TLS channel with its resolver and a call — driven over loopback, the call to a
 * DNS server that is not there (127.0.0.1:1), so it fails at once and nothing leaves the host.
 */
final class WarmUp {
  private WarmUp() {}

  static void run(int port) {
    ManagedChannel self = NettyChannelBuilder.forAddress("127.0.0.1", port).usePlaintext().build();
    try {
      ClientDriverGrpc.ClientDriverBlockingStub driver =
          ClientDriverGrpc.newBlockingStub(self).withDeadlineAfter(30, TimeUnit.SECONDS);
      driver.describe(DescribeRequest.newBuilder().setProtocol(DriverService.PROTOCOL).build());
      ChannelRef channel =
          driver.openChannel(
              ChannelConfig.newBuilder()
                  .setTarget("dns://127.0.0.1:1/warm-up.invalid:443")
                  .setServiceConfigJson("{\"loadBalancingConfig\": [{\"round_robin\": {}}]}")
                  .build());
      driver.call(
          CallRequest.newBuilder()
              .setChannel(channel.getId())
              .setMethod("/greeter.Greeter/SayHello")
              .setRequest(ByteString.EMPTY)
              .setDeadlineMs(2000)
              .setIdentityKey("x-backend-id")
              .build());
      driver.closeChannel(channel);
    } finally {
      self.shutdownNow();
    }
  }
}
