package org.fhirmigraine.ehr.bench;

import ca.uhn.fhir.context.FhirContext;
import ca.uhn.fhir.context.support.DefaultProfileValidationSupport;
import ca.uhn.fhir.parser.IParser;
import ca.uhn.fhir.util.VersionUtil;
import ca.uhn.fhir.validation.FhirValidator;
import ca.uhn.fhir.validation.ResultSeverityEnum;
import ca.uhn.fhir.validation.SingleValidationMessage;
import ca.uhn.fhir.validation.ValidationOptions;
import ca.uhn.fhir.validation.ValidationResult;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.hl7.fhir.common.hapi.validation.support.CommonCodeSystemsTerminologyService;
import org.hl7.fhir.common.hapi.validation.support.InMemoryTerminologyServerValidationSupport;
import org.hl7.fhir.common.hapi.validation.support.PrePopulatedValidationSupport;
import org.hl7.fhir.common.hapi.validation.support.SnapshotGeneratingValidationSupport;
import org.hl7.fhir.common.hapi.validation.support.ValidationSupportChain;
import org.hl7.fhir.common.hapi.validation.validator.FhirInstanceValidator;
import org.hl7.fhir.instance.model.api.IBaseResource;
import org.hl7.fhir.utilities.OIDUtilities;

import java.io.BufferedReader;
import java.io.FilterInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLongArray;
import java.util.stream.Stream;

/**
 * HAPI FHIR's validator in process, for benchmarks/validation.py: the same validation support
 * chain a HAPI server builds (core definitions, the project's FHIR package, snapshot generation,
 * in-memory terminology, the common code systems), a FhirInstanceValidator in a FhirValidator,
 * warmed up, then timed in rounds of whole passes over a corpus.
 *
 * <pre>
 * taskset -c 1 java -cp target/fhir-migraine-ehr.jar org.fhirmigraine.ehr.bench.ValidatorBench \
 *     --package DIR --corpus FILE.ndjson --out FILE.json [--rounds 9] [--seconds 1] [--warmup 60]
 *     [--stepped true]
 * </pre>
 *
 * The corpus has one JSON object a line: {"profile": canonical URL, "text": the resource as JSON
 * text}. The results go to the --out file as JSON (the log of the libraries goes to stdout).
 *
 * HAPI builds a new InstanceValidator for every validation, and its constructor reads and parses
 * the OID registry (oidregistry.csv, about 1.5 MB, in org.hl7.fhir.utilities) again each time.
 * To measure that cost inside the real validations, the libraries run in a class loader of
 * their own that counts how often the registry is opened and times each read from its opening
 * to the closing of its stream (the registry is read to its end and closed in the constructor).
 * Nothing else differs from the libraries as shipped.
 */
public final class ValidatorBench {

	/** Index of the registry openings in the shared counters. */
	static final int LOADS = 0;
	/** Index of the nanoseconds between opening and closing the registry. */
	static final int NANOS = 1;
	static final String REGISTRY = "oidregistry.csv";

	private ValidatorBench() {}

	public static void main(String[] args) throws Exception {
		// Load this class and every library again in the measuring loader, then run there.
		AtomicLongArray counters = new AtomicLongArray(2);
		RegistryTimingLoader loader = new RegistryTimingLoader(classPath(), counters);
		Thread.currentThread().setContextClassLoader(loader);
		Class<?> inner = loader.loadClass(ValidatorBench.class.getName());
		inner.getMethod("run", String[].class, AtomicLongArray.class).invoke(null, args, counters);
	}

	/** The module jar (or classes folder) this class came from, and every jar of lib/ beside it. */
	private static URL[] classPath() throws Exception {
		Path self = Path.of(ValidatorBench.class.getProtectionDomain().getCodeSource().getLocation().toURI());
		Path lib = self.getParent().resolve("lib");
		List<URL> urls = new ArrayList<>();
		urls.add(self.toUri().toURL());
		try (Stream<Path> jars = Files.list(lib)) {
			for (Path jar : jars.filter(p -> p.toString().endsWith(".jar")).sorted().toList()) {
				urls.add(jar.toUri().toURL());
			}
		}
		return urls.toArray(new URL[0]);
	}

	/**
	 * A class loader over the module's jars (not delegating to the application loader, so the
	 * libraries are defined here) that counts and times the reads of the OID registry.
	 */
	static final class RegistryTimingLoader extends URLClassLoader {
		private final AtomicLongArray counters;

		RegistryTimingLoader(URL[] urls, AtomicLongArray counters) {
			super("validator-bench", urls, ClassLoader.getPlatformClassLoader());
			this.counters = counters;
		}

		@Override
		public InputStream getResourceAsStream(String name) {
			if (!REGISTRY.equals(name)) {
				return super.getResourceAsStream(name);
			}
			long opened = System.nanoTime();
			counters.incrementAndGet(LOADS);
			InputStream stream = super.getResourceAsStream(name);
			return stream == null ? null : new TimedStream(stream, opened, counters);
		}
	}

	/** Adds the time from opening to the first close() to the shared counters. */
	static final class TimedStream extends FilterInputStream {
		private final long opened;
		private final AtomicLongArray counters;
		private boolean closed;

		TimedStream(InputStream in, long opened, AtomicLongArray counters) {
			super(in);
			this.opened = opened;
			this.counters = counters;
		}

		@Override
		public void close() throws IOException {
			super.close();
			if (!closed) {
				closed = true;
				counters.addAndGet(NANOS, System.nanoTime() - opened);
			}
		}
	}

	/** The benchmark proper; called inside the measuring class loader. */
	public static void run(String[] args, AtomicLongArray counters) throws Exception {
		Map<String, String> options = options(args);
		Path packageDir = Path.of(required(options, "package"));
		Path corpusFile = Path.of(required(options, "corpus"));
		Path out = Path.of(required(options, "out"));
		int rounds = Integer.parseInt(options.getOrDefault("rounds", "9"));
		double seconds = Double.parseDouble(options.getOrDefault("seconds", "1"));
		double warmup = Double.parseDouble(options.getOrDefault("warmup", "60"));
		// Stepped: after the warm-up, say "ready" and run one round per "round" line on stdin
		// (until "end" or the end of input), writing each round as a JSON line, so that the
		// caller can take turns with it on one core. The libraries' log goes to stderr then.
		boolean stepped = Boolean.parseBoolean(options.getOrDefault("stepped", "false"));
		PrintStream protocol = System.out;
		if (stepped) {
			System.setOut(System.err);
		}

		long setupStarted = System.nanoTime();
		FhirContext context = FhirContext.forR4();
		PrePopulatedValidationSupport projectPackage = packageSupport(context, packageDir);
		ValidationSupportChain chain = new ValidationSupportChain(
				new DefaultProfileValidationSupport(context),
				projectPackage,
				new SnapshotGeneratingValidationSupport(context),
				new InMemoryTerminologyServerValidationSupport(context),
				new CommonCodeSystemsTerminologyService(context));
		FhirValidator validator = context.newValidator();
		validator.setValidateAgainstStandardSchema(false);
		validator.setValidateAgainstStandardSchematron(false);
		validator.registerValidatorModule(new FhirInstanceValidator(chain));

		List<String> texts = new ArrayList<>();
		List<ValidationOptions> profiles = new ArrayList<>();
		ObjectMapper json = new ObjectMapper();
		for (String line : Files.readAllLines(corpusFile, StandardCharsets.UTF_8)) {
			if (line.isBlank()) {
				continue;
			}
			JsonNode item = json.readTree(line);
			texts.add(item.get("text").asText());
			profiles.add(new ValidationOptions().addProfile(item.get("profile").asText()));
		}
		int size = texts.size();
		if (size == 0) {
			throw new IllegalArgumentException("empty corpus: " + corpusFile);
		}

		// Warm-up: whole passes for at least `warmup` seconds (the first pass loads the core
		// definitions and generates the snapshots; on one core the JIT compiles for a minute or
		// more), then on while the passes still get faster: until none of the last five beat the
		// best pass before them by 2 %, or 3 x `warmup` seconds have gone.
		boolean[] hasErrors = new boolean[size];
		long warmStarted = System.nanoTime();
		double setupSeconds = (warmStarted - setupStarted) / 1e9;
		List<Double> passSeconds = new ArrayList<>();
		double warmed;
		do {
			long passStarted = System.nanoTime();
			for (int i = 0; i < size; i++) {
				hasErrors[i] = errors(validator.validateWithResult(texts.get(i), profiles.get(i)));
			}
			passSeconds.add((System.nanoTime() - passStarted) / 1e9);
			warmed = (System.nanoTime() - warmStarted) / 1e9;
		} while (warmed < warmup || (warmed < 3 * warmup && stillFaster(passSeconds)));
		int warmPasses = passSeconds.size();
		double warmSeconds = (System.nanoTime() - warmStarted) / 1e9;

		BufferedReader commands = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
		if (stepped) {
			protocol.println("{\"ready\":true}");
			protocol.flush();
		}
		StringBuilder roundsJson = new StringBuilder();
		int sink = 0;
		for (int round = 0; stepped ? "round".equals(commands.readLine()) : round < rounds; round++) {
			long loads = counters.get(LOADS);
			long nanos = counters.get(NANOS);
			long started = System.nanoTime();
			long done = 0;
			do {
				for (int i = 0; i < size; i++) {
					sink += validator.validateWithResult(texts.get(i), profiles.get(i)).getMessages().size();
				}
				done += size;
			} while ((System.nanoTime() - started) / 1e9 < seconds);
			long elapsed = System.nanoTime() - started;
			String line = String.format(Locale.ROOT,
					"{\"validations\":%d,\"seconds\":%.9f,\"registry_loads\":%d,\"registry_seconds\":%.9f}",
					done, elapsed / 1e9, counters.get(LOADS) - loads, (counters.get(NANOS) - nanos) / 1e9);
			roundsJson.append(round > 0 ? "," : "").append(line);
			if (stepped) {
				protocol.println(line);
				protocol.flush();
			}
		}

		// A cross-check of the registry time: the registry read alone, as the constructor of
		// InstanceValidator does it, in the same JVM after the rounds.
		int parses = 0;
		long parseStarted = System.nanoTime();
		do {
			sink += new OIDUtilities().isKnownOID("2.16.840.1.113883.6.1") ? 1 : 0;
			parses++;
		} while ((System.nanoTime() - parseStarted) / 1e9 < seconds);
		double parseSeconds = (System.nanoTime() - parseStarted) / 1e9 / parses;

		StringBuilder errorsJson = new StringBuilder();
		for (int i = 0; i < size; i++) {
			errorsJson.append(i > 0 ? "," : "").append(hasErrors[i]);
		}
		String result = String.format(Locale.ROOT,
				"{\"hapi_version\":\"%s\",\"java_version\":\"%s\",\"processors\":%d,\"corpus\":%d,"
						+ "\"package_resources\":%d,\"setup_seconds\":%.3f,\"warmup_passes\":%d,"
						+ "\"warmup_seconds\":%.3f,\"messages_seen\":%d,\"registry_alone_seconds\":%.9f,"
						+ "\"registry_alone_reads\":%d,\"warmup_pass_seconds\":%s,\"rounds\":[%s],\"has_errors\":[%s]}",
				VersionUtil.getVersion(), System.getProperty("java.version"),
				Runtime.getRuntime().availableProcessors(), size, projectPackage.fetchAllConformanceResources().size(),
				setupSeconds, warmPasses, warmSeconds, sink, parseSeconds, parses,
				passSeconds.stream().map(s -> String.format(Locale.ROOT, "%.3f", s)).toList().toString(),
				roundsJson, errorsJson);
		Files.writeString(out, result + "\n", StandardCharsets.UTF_8);
	}

	/** Whether one of the last five passes beat the best pass before them by more than 2 %. */
	private static boolean stillFaster(List<Double> passSeconds) {
		int n = passSeconds.size();
		if (n < 10) {
			return true;
		}
		double before = passSeconds.subList(0, n - 5).stream().min(Double::compare).orElseThrow();
		double last = passSeconds.subList(n - 5, n).stream().min(Double::compare).orElseThrow();
		return last < 0.98 * before;
	}

	/** The StructureDefinitions, ValueSets and CodeSystems of a FHIR package folder. */
	private static PrePopulatedValidationSupport packageSupport(FhirContext context, Path folder) throws IOException {
		PrePopulatedValidationSupport support = new PrePopulatedValidationSupport(context);
		IParser parser = context.newJsonParser();
		List<Path> files;
		try (Stream<Path> listing = Files.list(folder)) {
			files = listing.filter(p -> p.getFileName().toString().endsWith(".json")).sorted().toList();
		}
		for (Path file : files) {
			String name = file.getFileName().toString();
			if (name.equals("package.json")) {
				continue;
			}
			IBaseResource resource = parser.parseResource(Files.readString(file, StandardCharsets.UTF_8));
			switch (context.getResourceType(resource)) {
				case "StructureDefinition" -> support.addStructureDefinition(resource);
				case "ValueSet" -> support.addValueSet(resource);
				case "CodeSystem" -> support.addCodeSystem(resource);
				default -> { }
			}
		}
		return support;
	}

	private static boolean errors(ValidationResult result) {
		for (SingleValidationMessage message : result.getMessages()) {
			ResultSeverityEnum severity = message.getSeverity();
			if (severity == ResultSeverityEnum.ERROR || severity == ResultSeverityEnum.FATAL) {
				return true;
			}
		}
		return false;
	}

	private static Map<String, String> options(String[] args) {
		Map<String, String> options = new HashMap<>();
		for (int i = 0; i < args.length; i++) {
			if (!args[i].startsWith("--") || i + 1 >= args.length) {
				throw new IllegalArgumentException("expected --name value pairs, got: " + String.join(" ", args));
			}
			options.put(args[i].substring(2), args[++i]);
		}
		return options;
	}

	private static String required(Map<String, String> options, String name) {
		String value = options.get(name);
		if (value == null) {
			throw new IllegalArgumentException("--" + name + " is required");
		}
		return value;
	}
}
