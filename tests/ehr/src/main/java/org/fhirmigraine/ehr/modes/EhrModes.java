package org.fhirmigraine.ehr.modes;

import ca.uhn.fhir.rest.api.server.RequestDetails;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.EnumSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The modes switched on now, shared by the mode interceptors and the admin
 * endpoint. A switch takes effect with the next request; a request carrying
 * {@code X-Test-Admin: 1} sees no mode at all.
 */
public final class EhrModes {

	/** Request header that bypasses every mode for that request (test set-up). */
	public static final String BYPASS_HEADER = "X-Test-Admin";

	/** Every how many requests {@code throttle} answers 429 unless told otherwise. */
	public static final int DEFAULT_THROTTLE_EVERY = 5;

	private static final Logger ourLog = LoggerFactory.getLogger(EhrModes.class);

	private record State(Set<Mode> modes, int throttleEvery) {}

	private volatile State myState;
	private final AtomicLong myThrottleCount = new AtomicLong();

	public EhrModes(Collection<Mode> theModes, int theThrottleEvery) {
		myState = new State(freeze(theModes), checkThrottleEvery(theThrottleEvery));
	}

	/**
	 * Modes from a comma-separated list of names ({@code strict,no-transaction});
	 * blank means none. An unknown name is an {@link IllegalArgumentException}
	 * naming it.
	 */
	public static List<Mode> parse(String theNames) {
		List<Mode> modes = new ArrayList<>();
		if (theNames == null || theNames.isBlank()) {
			return modes;
		}
		for (String name : theNames.split(",")) {
			if (name.isBlank()) {
				continue;
			}
			modes.add(require(name));
		}
		return modes;
	}

	/** The mode of this name; an {@link IllegalArgumentException} naming an unknown one. */
	public static Mode require(String theName) {
		Mode mode = Mode.byName(theName);
		if (mode == null) {
			throw new IllegalArgumentException("unknown mode '" + (theName == null ? "" : theName.trim())
					+ "' (known: " + knownNames() + ")");
		}
		return mode;
	}

	public static String knownNames() {
		List<String> names = new ArrayList<>();
		for (Mode mode : Mode.values()) {
			names.add(mode.modeName());
		}
		return String.join(", ", names);
	}

	/**
	 * Switches to exactly these modes; {@code theThrottleEvery} null keeps the
	 * current value. Restarts the throttle count.
	 */
	public synchronized void set(Collection<Mode> theModes, Integer theThrottleEvery) {
		int every = theThrottleEvery == null ? myState.throttleEvery() : checkThrottleEvery(theThrottleEvery);
		myState = new State(freeze(theModes), every);
		myThrottleCount.set(0);
		ourLog.info("Modes now: {} (throttle every {})", describe(), every);
	}

	/** The modes on now, in declaration order. */
	public Set<Mode> active() {
		return myState.modes();
	}

	public int throttleEvery() {
		return myState.throttleEvery();
	}

	public boolean isOn(Mode theMode) {
		return myState.modes().contains(theMode);
	}

	/** True when the mode is on and the request does not bypass the modes. */
	public boolean isOn(Mode theMode, RequestDetails theRequest) {
		return isOn(theMode) && !bypassed(theRequest);
	}

	/** True when the request carries {@code X-Test-Admin: 1}. */
	public static boolean bypassed(RequestDetails theRequest) {
		if (theRequest == null) {
			return false;
		}
		String value = theRequest.getHeader(BYPASS_HEADER);
		return value != null && value.trim().equals("1");
	}

	/** Counts one request for {@code throttle}; true when this one is to be refused. */
	public boolean countForThrottle() {
		long n = myThrottleCount.incrementAndGet();
		return n % myState.throttleEvery() == 0;
	}

	/** The modes on now as text: "none" or "strict, throttle". */
	public String describe() {
		Set<Mode> modes = myState.modes();
		if (modes.isEmpty()) {
			return "none";
		}
		List<String> names = new ArrayList<>();
		for (Mode mode : modes) {
			names.add(mode.modeName());
		}
		return String.join(", ", names);
	}

	private static Set<Mode> freeze(Collection<Mode> theModes) {
		EnumSet<Mode> set = EnumSet.noneOf(Mode.class);
		set.addAll(theModes);
		return Collections.unmodifiableSet(set);
	}

	private static int checkThrottleEvery(int theEvery) {
		if (theEvery < 1) {
			throw new IllegalArgumentException("throttle_every must be 1 or more, got " + theEvery);
		}
		return theEvery;
	}
}
