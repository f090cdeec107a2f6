package org.fhirmigraine.ehr.modes;

import java.util.Locale;

/**
 * The behaviours of real EHRs the test EHR can imitate. Each one is switched
 * on by its name (the {@code EHR_MODES} setting, {@code PUT /admin/modes});
 * tests/ehr/README.md describes what each does and says in the
 * CapabilityStatement.
 */
public enum Mode {
	STRICT("strict"),
	NO_TRANSACTION("no-transaction"),
	NO_CONDITIONAL("no-conditional"),
	RESTRICTED_CREATE("restricted-create"),
	MINIMAL_RESPONSE("minimal-response"),
	RELATIVE_LINKS("relative-links"),
	THROTTLE("throttle"),
	LIMITED_SEARCH("limited-search");

	private final String myName;

	Mode(String theName) {
		myName = theName;
	}

	/** The name used in settings, the admin endpoint and messages. */
	public String modeName() {
		return myName;
	}

	/** The mode of this name (case and surrounding blanks ignored), or {@code null}. */
	public static Mode byName(String theName) {
		if (theName == null) {
			return null;
		}
		String wanted = theName.trim().toLowerCase(Locale.ROOT);
		for (Mode mode : values()) {
			if (mode.myName.equals(wanted)) {
				return mode;
			}
		}
		return null;
	}

	@Override
	public String toString() {
		return myName;
	}
}
