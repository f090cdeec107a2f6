package org.fhirmigraine.ehr.modes;

import ca.uhn.fhir.context.FhirContext;
import ca.uhn.fhir.interceptor.api.Hook;
import ca.uhn.fhir.interceptor.api.Interceptor;
import ca.uhn.fhir.interceptor.api.Pointcut;
import ca.uhn.fhir.rest.api.RestOperationTypeEnum;
import ca.uhn.fhir.rest.api.server.RequestDetails;
import ca.uhn.fhir.rest.server.exceptions.MethodNotAllowedException;
import org.hl7.fhir.instance.model.api.IBaseConformance;
import org.hl7.fhir.instance.model.api.IBaseHasExtensions;
import org.hl7.fhir.instance.model.api.IBaseResource;
import org.hl7.fhir.r4.model.Bundle;
import org.hl7.fhir.r4.model.CapabilityStatement.CapabilityStatementRestComponent;
import org.hl7.fhir.r4.model.CapabilityStatement.CapabilityStatementRestResourceComponent;
import org.hl7.fhir.r4.model.CapabilityStatement.TypeRestfulInteraction;

import java.util.Set;
import java.util.TreeSet;

/**
 * {@code restricted-create}: only Observation, QuestionnaireResponse,
 * DocumentReference and MedicationStatement can be written (create, update,
 * patch); writing any other type answers 405 with an OperationOutcome, like
 * an EHR that takes patient-reported data but no orders or demographics.
 * Reads, searches and deletes are unchanged. The statement lists
 * {@code create}, {@code update} and {@code patch} only for those types.
 *
 * <p>Plain requests are refused before they are read; a transaction is
 * refused as a whole; in a batch only the entries of other types fail (each
 * with 405), checked as they are stored.
 */
@Interceptor
public final class RestrictedCreate extends ModeInterceptor {

	/** The types that can be written in this mode. */
	public static final Set<String> WRITABLE =
			Set.of("Observation", "QuestionnaireResponse", "DocumentReference", "MedicationStatement");

	private static final String PLACEHOLDER_EXTENSION =
			"http://hapifhir.io/fhir/StructureDefinition/resource-placeholder";

	private final FhirContext myContext;

	public RestrictedCreate(EhrModes theModes, FhirContext theContext) {
		super(theModes, Mode.RESTRICTED_CREATE);
		myContext = theContext;
	}

	@Hook(Pointcut.SERVER_INCOMING_REQUEST_POST_PROCESSED)
	public void plainRequest(RequestDetails theRequest) {
		RestOperationTypeEnum operation = theRequest.getRestOperationType();
		if ((operation == RestOperationTypeEnum.CREATE
						|| operation == RestOperationTypeEnum.UPDATE
						|| operation == RestOperationTypeEnum.PATCH)
				&& on(theRequest)
				&& !WRITABLE.contains(theRequest.getResourceName())) {
			throw refusal(operation.getCode(), theRequest.getResourceName(), "");
		}
	}

	@Hook(Pointcut.SERVER_INCOMING_REQUEST_PRE_HANDLED)
	public void transaction(RequestDetails theRequest, RestOperationTypeEnum theOperation) {
		if ((theOperation != RestOperationTypeEnum.TRANSACTION && theOperation != RestOperationTypeEnum.BATCH)
				|| !on(theRequest)
				|| !(theRequest.getResource() instanceof Bundle bundle)
				|| bundle.getType() != Bundle.BundleType.TRANSACTION) {
			return;
		}
		int index = 0;
		for (Bundle.BundleEntryComponent entry : bundle.getEntry()) {
			Bundle.HTTPVerb verb = entry.getRequest().getMethod();
			String type = entryType(entry);
			boolean writes = verb == Bundle.HTTPVerb.POST || verb == Bundle.HTTPVerb.PUT || verb == Bundle.HTTPVerb.PATCH;
			if (writes && type != null && !WRITABLE.contains(type)) {
				throw refusal(verb == Bundle.HTTPVerb.POST ? "create" : verb.toCode().toLowerCase(java.util.Locale.ROOT),
						type, describeEntry(index, entry) + ": ");
			}
			index++;
		}
	}

	@Hook(Pointcut.STORAGE_PRESTORAGE_RESOURCE_CREATED)
	public void created(IBaseResource theResource, RequestDetails theRequest) {
		if (onForHttpRequest(theRequest) && !isPlaceholder(theResource)) {
			String type = myContext.getResourceType(theResource);
			if (!WRITABLE.contains(type)) {
				throw refusal("create", type, "");
			}
		}
	}

	@Hook(Pointcut.STORAGE_PRESTORAGE_RESOURCE_UPDATED)
	public void updated(IBaseResource thePrevious, IBaseResource theResource, RequestDetails theRequest) {
		if (onForHttpRequest(theRequest) && !isPlaceholder(theResource)) {
			String type = myContext.getResourceType(theResource);
			if (!WRITABLE.contains(type)) {
				throw refusal("update", type, "");
			}
		}
	}

	@Hook(Pointcut.SERVER_CAPABILITY_STATEMENT_GENERATED)
	public void statement(IBaseConformance theStatement, RequestDetails theRequest) {
		if (!on(theRequest)) {
			return;
		}
		for (CapabilityStatementRestComponent rest : restParts(theStatement)) {
			for (CapabilityStatementRestResourceComponent resource : rest.getResource()) {
				if (!WRITABLE.contains(resource.getType())) {
					resource.getInteraction().removeIf(i -> i.getCode() == TypeRestfulInteraction.CREATE
							|| i.getCode() == TypeRestfulInteraction.UPDATE
							|| i.getCode() == TypeRestfulInteraction.PATCH);
				}
			}
		}
	}

	private MethodNotAllowedException refusal(String theInteraction, String theType, String theWhere) {
		return new MethodNotAllowedException(prefix() + theWhere + theInteraction + " of " + theType
				+ " is not supported; this server writes only " + String.join(", ", new TreeSet<>(WRITABLE)));
	}

	private static boolean isPlaceholder(IBaseResource theResource) {
		return theResource instanceof IBaseHasExtensions withExtensions
				&& withExtensions.getExtension().stream().anyMatch(e -> PLACEHOLDER_EXTENSION.equals(e.getUrl()));
	}
}
