package org.fhirmigraine.ehr.modes;

import ca.uhn.fhir.context.FhirContext;
import ca.uhn.fhir.interceptor.api.Hook;
import ca.uhn.fhir.interceptor.api.Interceptor;
import ca.uhn.fhir.interceptor.api.Pointcut;
import ca.uhn.fhir.jpa.api.dao.DaoRegistry;
import ca.uhn.fhir.rest.api.RestOperationTypeEnum;
import ca.uhn.fhir.rest.api.server.RequestDetails;
import ca.uhn.fhir.rest.api.server.SystemRequestDetails;
import ca.uhn.fhir.rest.server.exceptions.InvalidRequestException;
import ca.uhn.fhir.rest.server.exceptions.ResourceGoneException;
import ca.uhn.fhir.rest.server.exceptions.ResourceNotFoundException;
import ca.uhn.fhir.storage.interceptor.AutoCreatePlaceholderReferenceTargetRequest;
import ca.uhn.fhir.storage.interceptor.AutoCreatePlaceholderReferenceTargetResponse;
import ca.uhn.fhir.util.FhirTerser;
import org.hl7.fhir.instance.model.api.IBaseConformance;
import org.hl7.fhir.instance.model.api.IBaseResource;
import org.hl7.fhir.r4.model.Bundle;
import org.hl7.fhir.r4.model.CapabilityStatement.CapabilityStatementRestComponent;
import org.hl7.fhir.r4.model.CapabilityStatement.CapabilityStatementRestResourceComponent;
import org.hl7.fhir.r4.model.CapabilityStatement.ReferenceHandlingPolicy;
import org.hl7.fhir.r4.model.IdType;
import org.hl7.fhir.r4.model.Identifier;
import org.hl7.fhir.r4.model.Reference;

import java.util.HashSet;
import java.util.Set;

/**
 * {@code strict}: every literal reference of a create, update, transaction or
 * batch must name a resource that exists on this server (or an entry of the
 * same Bundle). No placeholder target is created; external (absolute URL to
 * another server) references and references by identifier only are refused.
 * The answer is 400 with an OperationOutcome naming the reference.
 *
 * <p>The request is checked before anything is written; HAPI's own
 * reference resolution (conditional references such as
 * {@code Patient?identifier=...} included) then meets the placeholder hook,
 * which refuses instead of creating an empty target.
 */
@Interceptor
public final class StrictReferences extends ModeInterceptor {

	private final FhirContext myContext;
	private final DaoRegistry myDaoRegistry;

	public StrictReferences(EhrModes theModes, FhirContext theContext, DaoRegistry theDaoRegistry) {
		super(theModes, Mode.STRICT);
		myContext = theContext;
		myDaoRegistry = theDaoRegistry;
	}

	@Hook(Pointcut.SERVER_INCOMING_REQUEST_PRE_HANDLED)
	public void checkRequest(RequestDetails theRequest, RestOperationTypeEnum theOperation) {
		if (!on(theRequest) || theRequest.getResource() == null) {
			return;
		}
		String base = theRequest.getFhirServerBase();
		switch (theOperation) {
			case CREATE, UPDATE -> checkResource(theRequest.getResource(), Set.of(), base);
			case TRANSACTION, BATCH -> {
				if (theRequest.getResource() instanceof Bundle bundle) {
					checkBundle(bundle, base);
				}
			}
			default -> {
				// reads, searches, deletes and operations carry no references to check
			}
		}
	}

	@Hook(Pointcut.STORAGE_PRE_AUTO_CREATE_PLACEHOLDER_REFERENCE)
	public AutoCreatePlaceholderReferenceTargetResponse refusePlaceholder(
			AutoCreatePlaceholderReferenceTargetRequest thePlaceholder, RequestDetails theRequest) {
		if (!onForHttpRequest(theRequest)) {
			return AutoCreatePlaceholderReferenceTargetResponse.proceed();
		}
		IBaseResource target = thePlaceholder.getTargetResourceToCreate();
		String id = target.getIdElement().getIdPart();
		String what = id == null || id.isBlank()
				? "a " + myContext.getResourceType(target) + " matching the reference's search"
				: myContext.getResourceType(target) + "/" + id;
		throw new InvalidRequestException(prefix() + "the reference to " + what
				+ " names no resource on this server (no placeholder is created)");
	}

	@Hook(Pointcut.SERVER_CAPABILITY_STATEMENT_GENERATED)
	public void statement(IBaseConformance theStatement, RequestDetails theRequest) {
		if (!on(theRequest)) {
			return;
		}
		for (CapabilityStatementRestComponent rest : restParts(theStatement)) {
			for (CapabilityStatementRestResourceComponent resource : rest.getResource()) {
				resource.getReferencePolicy().clear();
				resource.addReferencePolicy(ReferenceHandlingPolicy.LITERAL);
				resource.addReferencePolicy(ReferenceHandlingPolicy.RESOLVES);
				resource.addReferencePolicy(ReferenceHandlingPolicy.ENFORCED);
				resource.addReferencePolicy(ReferenceHandlingPolicy.LOCAL);
			}
		}
	}

	private void checkBundle(Bundle theBundle, String theBase) {
		// What the entries themselves are called, so references between them are fine.
		Set<String> inBundle = new HashSet<>();
		for (Bundle.BundleEntryComponent entry : theBundle.getEntry()) {
			String fullUrl = entry.getFullUrl();
			if (fullUrl != null && !fullUrl.isBlank()) {
				inBundle.add(fullUrl);
				String local = fullUrl.startsWith("urn:") ? null : localPart(fullUrl, theBase);
				if (local != null) {
					inBundle.add(versionless(local));
				}
			}
			Bundle.BundleEntryRequestComponent request = entry.getRequest();
			if (request.getMethod() == Bundle.HTTPVerb.PUT && request.hasUrl() && !request.getUrl().contains("?")) {
				inBundle.add(versionless(request.getUrl()));
			}
		}
		for (Bundle.BundleEntryComponent entry : theBundle.getEntry()) {
			Bundle.HTTPVerb verb = entry.getRequest().getMethod();
			if (entry.getResource() != null && (verb == Bundle.HTTPVerb.POST || verb == Bundle.HTTPVerb.PUT)) {
				checkResource(entry.getResource(), inBundle, theBase);
			}
		}
	}

	private void checkResource(IBaseResource theResource, Set<String> theInBundle, String theBase) {
		FhirTerser terser = myContext.newTerser();
		String owner = myContext.getResourceType(theResource);
		for (Reference reference : terser.getAllPopulatedChildElementsOfType(theResource, Reference.class)) {
			String value = reference.getReference();
			if (value == null || value.isBlank()) {
				if (reference.hasIdentifier()) {
					Identifier identifier = reference.getIdentifier();
					throw new InvalidRequestException(prefix() + "a reference in " + owner + " by identifier only ("
							+ identifier.getSystem() + "|" + identifier.getValue()
							+ "); this server needs a literal reference to an existing resource");
				}
				continue; // display only: nothing to resolve
			}
			if (value.startsWith("#")) {
				continue; // contained resource
			}
			if (value.startsWith("urn:")) {
				if (!theInBundle.contains(value)) {
					throw new InvalidRequestException(prefix() + "the reference " + value + " in " + owner
							+ " names no entry of this Bundle");
				}
				continue;
			}
			String local = value;
			if (value.startsWith("http://") || value.startsWith("https://")) {
				local = localPart(value, theBase);
				if (local == null) {
					throw new InvalidRequestException(prefix() + "the external reference " + value + " in " + owner
							+ " is refused: only resources on this server can be referenced");
				}
			}
			if (local.contains("?")) {
				continue; // conditional reference: resolved by the server, the placeholder hook refuses a miss
			}
			IdType id = new IdType(local);
			if (!id.hasResourceType() || !id.hasIdPart()
					|| !myContext.getResourceTypes().contains(id.getResourceType())) {
				throw new InvalidRequestException(prefix() + "the reference " + value + " in " + owner
						+ " is not of the form Type/id");
			}
			String key = id.getResourceType() + "/" + id.getIdPart();
			if (theInBundle.contains(key)) {
				continue;
			}
			if (!exists(id.getResourceType(), id.getIdPart())) {
				throw new InvalidRequestException(prefix() + "the reference " + value + " in " + owner
						+ " names no resource on this server (no placeholder is created)");
			}
		}
	}

	private boolean exists(String theType, String theId) {
		try {
			myDaoRegistry.getResourceDao(theType).read(new IdType(theType, theId), new SystemRequestDetails());
			return true;
		} catch (ResourceNotFoundException | ResourceGoneException e) {
			return false;
		}
	}

	/** "Type/id" of an absolute URL on this server, or null for another server's. */
	private static String localPart(String theUrl, String theBase) {
		if (theBase != null && theUrl.startsWith(theBase + "/")) {
			return theUrl.substring(theBase.length() + 1);
		}
		if (!theUrl.contains("://")) {
			return theUrl;
		}
		return null;
	}

	private static String versionless(String theTypeAndId) {
		IdType id = new IdType(theTypeAndId);
		return id.hasResourceType() ? id.getResourceType() + "/" + id.getIdPart() : theTypeAndId;
	}
}
