package grpcchaos.driver;

import io.grpc.Server;
import io.grpc.netty.NettyServerBuilder;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetSocketAddress;

/**
 * grpc-chaos's client driver for grpc-java (proto/driver.proto): each channel is a
 * ManagedChannel (grpc-netty) configured from the protocol's portable Settings and the
 * profile's service config, driven over the ClientDriver service.
 *
 * <p>It serves plaintext on 127.0.0.1, prints {"driver": "grpc-chaos", "protocol": 1, "port":
 * N} once it listens, and exits when its stdin reaches EOF (the runner holds it open and never
 * writes) or on SIGTERM/SIGINT (the JVM's own handlers).
 *
 * <p>{@code --warm-up}: instead, it drives itself once (WarmUp) and exits: the build runs it
 * so to archive the classes a start loads (AppCDS), which halves the JVM's start.
 *
 * <p>Built from Debian's grpc-java 1.41 (Makefile). What that version cannot honour is said in
 * Describe (settings it leaves out, ignored_fields, notes) or refused by OpenChannel. Times are
 * System.nanoTime(): HotSpot reads CLOCK_MONOTONIC for it on Linux, the runner's clock.
 */
public final class Main {
  private Main() {}

  public static void main(String[] args) throws IOException {
    Server server =
        NettyServerBuilder.forAddress(new InetSocketAddress("127.0.0.1", 0))
            .addService(new DriverService())
            .build()
            .start();
    if (args.length == 1 && args[0].equals("--warm-up")) {
      WarmUp.run(server.getPort());
      server.shutdownNow();
      System.exit(0); // the JVM writes its class archive (-XX:ArchiveClassesAtExit) on exit
    }
    System.out.println(
        "{\"driver\": \"grpc-chaos\", \"protocol\": " + DriverService.PROTOCOL
            + ", \"port\": " + server.getPort() + "}");
    System.out.flush();
    // The lifeline: read until EOF (the runner has gone); the loop ends with the stream.
    InputStream in = System.in;
    byte[] discard = new byte[512];
    try {
      while (in.read(discard) >= 0) {
        // nothing is ever written; anything that is, is ignored
      }
    } catch (IOException ignored) {
      // a broken stdin is a gone parent too
    }
    // Nothing to flush or hand over: the channels and loads die with the process.
    Runtime.getRuntime().halt(0);
  }
}
