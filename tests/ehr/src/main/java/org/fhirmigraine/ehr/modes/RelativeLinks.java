package org.fhirmigraine.ehr.modes;

import ca.uhn.fhir.interceptor.api.Hook;
import ca.uhn.fhir.interceptor.api.Interceptor;
import ca.uhn.fhir.interceptor.api.Pointcut;
import ca.uhn.fhir.rest.api.server.RequestDetails;
import ca.uhn.fhir.rest.api.server.ResponseDetails;
import org.hl7.fhir.r4.model.Bundle;

/**
 * {@code relative-links}: the {@code link.url}s (self, next, previous) of
 * search and history Bundles are relative to the base: {@code Observation?...}
 * and {@code ?_getpages=...}, both resolvable against
 * {@code http://host:port/fhir/}. Nothing in a CapabilityStatement can say
 * this; the mode is named in {@code implementation.description}.
 */
@Interceptor
public final class RelativeLinks extends ModeInterceptor {

	public RelativeLinks(EhrModes theModes) {
		super(theModes, Mode.RELATIVE_LINKS);
	}

	@Hook(Pointcut.SERVER_OUTGOING_RESPONSE)
	public void relativize(RequestDetails theRequest, ResponseDetails theResponse) {
		if (!(theResponse.getResponseResource() instanceof Bundle bundle)
				|| (bundle.getType() != Bundle.BundleType.SEARCHSET && bundle.getType() != Bundle.BundleType.HISTORY)
				|| !on(theRequest)) {
			return;
		}
		String base = theRequest.getFhirServerBase();
		for (Bundle.BundleLinkComponent link : bundle.getLink()) {
			link.setUrl(relative(link.getUrl(), base));
		}
	}

	static String relative(String theUrl, String theBase) {
		if (theUrl == null || theBase == null || !theUrl.startsWith(theBase)) {
			return theUrl;
		}
		String rest = theUrl.substring(theBase.length());
		if (rest.startsWith("/")) {
			return rest.substring(1);
		}
		if (rest.isEmpty() || rest.startsWith("?")) {
			return rest.isEmpty() ? "./" : rest;
		}
		return theUrl; // the base is only a prefix of a longer path segment
	}
}
