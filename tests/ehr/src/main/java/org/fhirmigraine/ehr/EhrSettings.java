package org.fhirmigraine.ehr;

import java.nio.file.Path;
import java.util.Locale;

/**
 * Run-time settings of the test EHR. Each one is read from a system property
 * first ({@code -Dehr.port=...}) and then from an environment variable
 * ({@code EHR_PORT=...}).
 */
public final class EhrSettings {

	/** Port the HTTP server listens on. */
	public final int port;

	/** Interface the HTTP server binds to; loopback unless told otherwise. */
	public final String host;

	/**
	 * Directory of a persistent H2 database, or {@code null} for a fresh
	 * in-memory database on every start (the default).
	 */
	public final Path dataDir;

	/** Page size of searches without {@code _count}. */
	public final int defaultPageSize;

	/** Largest {@code _count} the server honours. */
	public final int maxPageSize;

	/** Modes on at start, comma-separated names ({@code strict,no-transaction}); blank = none. */
	public final String modes;

	/** Every how many requests the {@code throttle} mode answers 429. */
	public final int throttleEvery;

	private EhrSettings(
			int port, String host, Path dataDir, int defaultPageSize, int maxPageSize, String modes, int throttleEvery) {
		this.port = port;
		this.host = host;
		this.dataDir = dataDir;
		this.defaultPageSize = defaultPageSize;
		this.maxPageSize = maxPageSize;
		this.modes = modes;
		this.throttleEvery = throttleEvery;
	}

	public static EhrSettings fromEnvironment() {
		int port = intSetting("ehr.port", "EHR_PORT", 8090);
		String host = setting("ehr.host", "EHR_HOST", "127.0.0.1");
		String dir = setting("ehr.data.dir", "EHR_DATA_DIR", "");
		Path dataDir = dir.isBlank() ? null : Path.of(dir).toAbsolutePath();
		int defaultPageSize = intSetting("ehr.page.default", "EHR_PAGE_DEFAULT", 20);
		int maxPageSize = intSetting("ehr.page.max", "EHR_PAGE_MAX", 1000);
		String modes = setting("ehr.modes", "EHR_MODES", "");
		int throttleEvery = intSetting("ehr.throttle.every", "EHR_THROTTLE_EVERY", 5);
		return new EhrSettings(port, host, dataDir, defaultPageSize, maxPageSize, modes, throttleEvery);
	}

	/** JDBC URL of the H2 database this run uses. */
	public String jdbcUrl() {
		if (dataDir == null) {
			// A named in-memory database that lives as long as the JVM.
			return "jdbc:h2:mem:ehr;DB_CLOSE_DELAY=-1";
		}
		String file = dataDir.resolve("ehr").toString().replace('\\', '/');
		return "jdbc:h2:file:" + file;
	}

	public String describeDatabase() {
		return dataDir == null ? "H2 in memory (fresh on every start)" : "H2 file database in " + dataDir;
	}

	private static String setting(String property, String env, String fallback) {
		String value = System.getProperty(property);
		if (value == null || value.isBlank()) {
			value = System.getenv(env);
		}
		return value == null || value.isBlank() ? fallback : value.trim();
	}

	private static int intSetting(String property, String env, int fallback) {
		String value = setting(property, env, Integer.toString(fallback));
		try {
			return Integer.parseInt(value);
		} catch (NumberFormatException e) {
			throw new IllegalArgumentException(String.format(
					Locale.ROOT, "%s / %s must be an integer, got '%s'", property, env, value));
		}
	}
}
