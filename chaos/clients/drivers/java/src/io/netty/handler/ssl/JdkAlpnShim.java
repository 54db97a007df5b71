package io.netty.handler.ssl;

/**
 * ALPN ("h2") on the JDK's own TLS, for Debian's netty-handler 4.1.48, which lacks the
 * JdkAlpn* classes that JdkSslContext would otherwise pick (grpc-netty needs ALPN to speak
 * HTTP/2 over TLS). In netty's package because the negotiator's constructor and
 * Java9SslEngine are package-private; JDK 9+ has ALPN in SSLEngine, which Java9SslEngine uses.
 */
public final class JdkAlpnShim {
  private JdkAlpnShim() {}

  /** A client context like {@code jdkCtx} (built with SslProvider.JDK) that offers h2. */
  public static SslContext h2(SslContext jdkCtx) {
    JdkApplicationProtocolNegotiator negotiator =
        new JdkBaseApplicationProtocolNegotiator(
            (engine, apn, isServer) -> new Java9SslEngine(engine, apn, isServer),
            JdkBaseApplicationProtocolNegotiator.FAIL_SELECTOR_FACTORY,
            JdkBaseApplicationProtocolNegotiator.FAIL_SELECTION_LISTENER_FACTORY,
            "h2");
    return new JdkSslContext(
        ((JdkSslContext) jdkCtx).context(),
        jdkCtx.isClient(),
        jdkCtx.cipherSuites(),
        IdentityCipherSuiteFilter.INSTANCE,
        negotiator,
        ClientAuth.NONE,
        null,
        false);
  }
}
