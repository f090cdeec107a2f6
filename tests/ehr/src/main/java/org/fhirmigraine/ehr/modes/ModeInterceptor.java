package org.fhirmigraine.ehr.modes;

import ca.uhn.fhir.rest.api.server.RequestDetails;
import ca.uhn.fhir.rest.server.servlet.ServletRequestDetails;
import org.hl7.fhir.instance.model.api.IBaseConformance;
import org.hl7.fhir.r4.model.Bundle;
import org.hl7.fhir.r4.model.CapabilityStatement;
import org.hl7.fhir.r4.model.CapabilityStatement.CapabilityStatementRestComponent;

import java.util.List;
import java.util.Locale;

/**
 * What every mode interceptor shares: whether its mode is on for a request
 * and small helpers. Each mode changes its part of the CapabilityStatement in
 * its own {@code SERVER_CAPABILITY_STATEMENT_GENERATED} hook.
 */
abstract class ModeInterceptor {

	protected final EhrModes myModes;
	private final Mode myMode;

	protected ModeInterceptor(EhrModes theModes, Mode theMode) {
		myModes = theModes;
		myMode = theMode;
	}

	/** True when this mode is on and the request does not bypass the modes. */
	protected boolean on(RequestDetails theRequest) {
		return myModes.isOn(myMode, theRequest);
	}

	/**
	 * Like {@link #on}, for storage hooks: only writes that come in over HTTP
	 * are affected, never the server's own internal ones.
	 */
	protected boolean onForHttpRequest(RequestDetails theRequest) {
		return theRequest instanceof ServletRequestDetails && on(theRequest);
	}

	protected String prefix() {
		return myMode.modeName() + " mode: ";
	}

	/** The server part of the statement (the only one HAPI writes). */
	protected static List<CapabilityStatementRestComponent> restParts(IBaseConformance theStatement) {
		return ((CapabilityStatement) theStatement).getRest();
	}

	/** The resource type an entry of a transaction or batch writes, or null. */
	protected static String entryType(Bundle.BundleEntryComponent theEntry) {
		if (theEntry.getResource() != null) {
			return theEntry.getResource().fhirType();
		}
		String url = theEntry.getRequest().getUrl();
		if (url == null || url.isBlank()) {
			return null;
		}
		String path = url.split("[?]", 2)[0];
		return path.split("/", 2)[0];
	}

	/** How an entry is named in messages: "entry 2 (POST Patient)". */
	protected static String describeEntry(int theIndex, Bundle.BundleEntryComponent theEntry) {
		Bundle.HTTPVerb verb = theEntry.getRequest().getMethod();
		String url = theEntry.getRequest().getUrl();
		return String.format(Locale.ROOT, "entry %d (%s %s)", theIndex, verb == null ? "?" : verb.toCode(), url);
	}
}
