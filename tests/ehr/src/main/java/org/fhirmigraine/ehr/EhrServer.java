package org.fhirmigraine.ehr;

import ca.uhn.fhir.rest.server.RestfulServer;
import org.fhirmigraine.ehr.modes.AdminModesServlet;
import org.fhirmigraine.ehr.modes.EhrModes;
import org.eclipse.jetty.ee10.servlet.ServletContextHandler;
import org.eclipse.jetty.ee10.servlet.ServletHolder;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.context.annotation.AnnotationConfigApplicationContext;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.util.Locale;

/**
 * Entry point of the test EHR: builds the Spring context with HAPI's JPA
 * server, then serves its REST servlet with an embedded Jetty at
 * {@code http://HOST:PORT/fhir}.
 */
public final class EhrServer {

	private static final Logger ourLog = LoggerFactory.getLogger(EhrServer.class);

	private EhrServer() {}

	public static void main(String[] args) throws Exception {
		long startNanos = System.nanoTime();
		EhrSettings settings = EhrSettings.fromEnvironment();
		ourLog.info("Starting test EHR on {}:{} with {}", settings.host, settings.port, settings.describeDatabase());

		// Fail at once, not after the whole JPA start-up, on an unknown mode or a taken port.
		try {
			new EhrModes(EhrModes.parse(settings.modes), settings.throttleEvery);
		} catch (IllegalArgumentException e) {
			ourLog.error("EHR_MODES / EHR_THROTTLE_EVERY: {}", e.getMessage());
			System.exit(1);
			return;
		}

		// The port, likewise.
		try (ServerSocket probe = new ServerSocket()) {
			probe.setReuseAddress(true);
			probe.bind(new InetSocketAddress(settings.host, settings.port));
		} catch (IOException e) {
			ourLog.error("Cannot listen on {}:{}: {}", settings.host, settings.port, e.getMessage());
			System.exit(1);
			return;
		}

		AnnotationConfigApplicationContext spring = new AnnotationConfigApplicationContext();
		spring.registerBean(EhrSettings.class, () -> settings);
		spring.register(EhrConfig.class);
		Server jetty = null;
		try {
			spring.refresh();

			RestfulServer fhirServlet = spring.getBean(RestfulServer.class);
			jetty = new Server();
			ServerConnector connector = new ServerConnector(jetty);
			connector.setHost(settings.host);
			connector.setPort(settings.port);
			jetty.addConnector(connector);

			ServletContextHandler context = new ServletContextHandler(ServletContextHandler.NO_SESSIONS);
			context.setContextPath("/");
			ServletHolder holder = new ServletHolder("fhir", fhirServlet);
			holder.setInitOrder(1);
			context.addServlet(holder, "/fhir/*");
			context.addFilter(QuickExportPolling.class, "/fhir/*", java.util.EnumSet.of(jakarta.servlet.DispatcherType.REQUEST));
			EhrModes modes = spring.getBean(EhrModes.class);
			context.addServlet(new ServletHolder("admin", new AdminModesServlet(modes)), "/admin/*");
			jetty.setHandler(context);
			jetty.setStopAtShutdown(false);
			jetty.start();
		} catch (Exception | Error e) {
			ourLog.error("Test EHR failed to start", e);
			stopQuietly(jetty);
			spring.close();
			System.exit(1);
			return;
		}

		Server started = jetty;
		Runtime.getRuntime().addShutdownHook(new Thread(() -> {
			ourLog.info("Stopping test EHR");
			stopQuietly(started);
			spring.close();
		}, "ehr-shutdown"));

		double seconds = (System.nanoTime() - startNanos) / 1e9;
		ourLog.info(String.format(
				Locale.ROOT,
				"Test EHR ready at http://%s:%d/fhir after %.1f s (max heap %d MiB; modes: %s)",
				settings.host,
				settings.port,
				seconds,
				Runtime.getRuntime().maxMemory() / (1024 * 1024),
				spring.getBean(EhrModes.class).describe()));
		jetty.join();
	}

	private static void stopQuietly(Server theServer) {
		if (theServer == null) {
			return;
		}
		try {
			theServer.stop();
		} catch (Exception e) {
			ourLog.warn("Error while stopping Jetty", e);
		}
	}
}
