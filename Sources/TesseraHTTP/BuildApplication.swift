public import HTTPTypes
public import Hummingbird
public import Logging
public import ServiceLifecycle
public import TesseraOAuth
public import TesseraSignIn

/// The composition root of the HTTP server: routes, middleware and background services.
public func buildApplication(
    broker: Broker, host: String, port: Int, logger: Logger, metrics: BrokerMetrics = BrokerMetrics(),
    signIn: OIDCSignIn? = nil, samlSignIn: SAMLSignIn? = nil, extraServices: [any Service] = []
) -> some ApplicationProtocol {
    let router = Router(context: TesseraRequestContext.self)
    router.add(middleware: RequestObservationMiddleware(metrics: metrics))
    OAuthController(broker: broker, metrics: metrics).addRoutes(to: router)
    OperationsController(broker: broker, metrics: metrics).addRoutes(to: router)
    if let signIn { SignInController(oidc: signIn, saml: samlSignIn, clock: broker.clock).addRoutes(to: router) }
    var app = Application(
        router: router,
        configuration: .init(address: .hostname(host, port: port), serverName: nil),
        logger: logger)
    // First, so that it stops last: tokens verify until the server has drained.
    app.addServices(RevocationFeedService(feed: broker.revocationFeed))
    app.addServices(BrokerUpkeepService(broker: broker, logger: logger))
    app.addServices(extraServices)
    return app
}
