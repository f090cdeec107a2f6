package org.fhirmigraine.ehr;

import ca.uhn.fhir.batch2.api.IJobMaintenanceService;
import ca.uhn.fhir.batch2.jobs.config.Batch2JobsConfig;
import ca.uhn.fhir.batch2.jobs.export.BulkDataExportProvider;
import ca.uhn.fhir.context.FhirContext;
import ca.uhn.fhir.context.support.IValidationSupport;
import ca.uhn.fhir.jpa.api.config.JpaStorageSettings;
import ca.uhn.fhir.jpa.api.config.ThreadPoolFactoryConfig;
import ca.uhn.fhir.jpa.api.dao.DaoRegistry;
import ca.uhn.fhir.jpa.api.dao.IFhirSystemDao;
import ca.uhn.fhir.jpa.batch2.JpaBatch2Config;
import ca.uhn.fhir.jpa.config.HapiJpaConfig;
import ca.uhn.fhir.jpa.config.r4.JpaR4Config;
import ca.uhn.fhir.jpa.config.util.HapiEntityManagerFactoryUtil;
import ca.uhn.fhir.jpa.model.config.PartitionSettings;
import ca.uhn.fhir.jpa.model.config.SubscriptionSettings;
import ca.uhn.fhir.jpa.model.dialect.HapiFhirH2Dialect;
import ca.uhn.fhir.jpa.provider.JpaCapabilityStatementProvider;
import ca.uhn.fhir.jpa.provider.JpaSystemProvider;
import ca.uhn.fhir.jpa.provider.ValueSetOperationProvider;
import ca.uhn.fhir.jpa.search.DatabaseBackedPagingProvider;
import ca.uhn.fhir.jpa.subscription.channel.config.SubscriptionChannelConfig;
import ca.uhn.fhir.narrative2.NullNarrativeGenerator;
import ca.uhn.fhir.rest.api.EncodingEnum;
import ca.uhn.fhir.rest.server.IncomingRequestAddressStrategy;
import ca.uhn.fhir.rest.server.RestfulServer;
import ca.uhn.fhir.rest.server.interceptor.LoggingInterceptor;
import ca.uhn.fhir.rest.server.interceptor.ResponseHighlighterInterceptor;
import ca.uhn.fhir.rest.server.provider.ResourceProviderFactory;
import ca.uhn.fhir.rest.server.util.ISearchParamRegistry;
import jakarta.persistence.EntityManagerFactory;
import org.apache.commons.dbcp2.BasicDataSource;
import org.fhirmigraine.ehr.modes.EhrModes;
import org.fhirmigraine.ehr.modes.LimitedSearch;
import org.fhirmigraine.ehr.modes.MinimalResponse;
import org.fhirmigraine.ehr.modes.ModesStatement;
import org.fhirmigraine.ehr.modes.NoConditional;
import org.fhirmigraine.ehr.modes.NoTransaction;
import org.fhirmigraine.ehr.modes.RelativeLinks;
import org.fhirmigraine.ehr.modes.RestrictedCreate;
import org.fhirmigraine.ehr.modes.StrictReferences;
import org.fhirmigraine.ehr.modes.Throttle;
import org.springframework.beans.factory.annotation.Qualifier;
import org.springframework.beans.factory.config.ConfigurableListableBeanFactory;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.context.annotation.Import;
import org.springframework.context.annotation.Primary;
import org.springframework.orm.jpa.JpaTransactionManager;
import org.springframework.orm.jpa.LocalContainerEntityManagerFactoryBean;
import org.springframework.transaction.annotation.EnableTransactionManagement;

import java.time.Duration;
import java.util.Properties;
import javax.sql.DataSource;

/**
 * Spring configuration of the test EHR: HAPI's own JPA server configuration
 * for R4 plus the few beans a host application has to supply (database,
 * entity manager, transactions, storage settings) and the REST servlet.
 */
@Configuration
@EnableTransactionManagement
@Import({
	JpaR4Config.class,
	HapiJpaConfig.class,
	JpaBatch2Config.class,
	Batch2JobsConfig.class,
	// In-memory message channels for batch jobs; nothing leaves the JVM.
	SubscriptionChannelConfig.class,
	ThreadPoolFactoryConfig.class
})
public class EhrConfig {

	private final EhrSettings mySettings;

	public EhrConfig(EhrSettings theSettings) {
		mySettings = theSettings;
	}

	/**
	 * What this server allows and does beyond HAPI's defaults; README.md
	 * explains each choice for the people writing tests against it.
	 */
	@Bean
	public JpaStorageSettings storageSettings() {
		JpaStorageSettings s = new JpaStorageSettings();

		// Client-assigned ids of any form, numeric ones too (PUT Patient/123).
		// Ids the server assigns itself are then UUIDs, so they can never
		// collide with an id a client chose.
		s.setResourceClientIdStrategy(JpaStorageSettings.ClientIdStrategyEnum.ANY);
		s.setResourceServerIdStrategy(JpaStorageSettings.IdStrategyEnum.UUID);

		// A reference to a resource that does not exist (Patient/123) creates
		// an empty placeholder instead of failing the write.
		s.setAutoCreatePlaceholderReferenceTargets(true);
		s.setPopulateIdentifierInAutoCreatedPlaceholderReferenceTargets(true);
		s.setAllowExternalReferences(true);

		// A search always reads the database: a test that writes and then
		// searches again must see its write, not a cached result list.
		s.setReuseCachedSearchResultsForMillis(null);

		// Let tests clean up after themselves.
		s.setAllowMultipleDelete(true);
		s.setExpungeEnabled(true);
		s.setDeleteExpungeEnabled(true);

		s.setAllowContainsSearches(true);
		s.setIndexMissingFields(JpaStorageSettings.IndexEnabledEnum.ENABLED);
		s.setFetchSizeDefaultMaximum(mySettings.maxPageSize);

		// No full-text indexing (no Lucene / Elasticsearch).
		s.setHibernateSearchIndexFullText(false);
		s.setHibernateSearchIndexSearchParams(false);

		// FHIR Bulk Data export ($export at system, Patient and Group level),
		// never answered from an earlier job with the same parameters: a test
		// that writes and then exports again must see its write.
		s.setEnableTaskBulkExportJobExecution(true);
		s.setEnableBulkExportJobReuse(false);
		return s;
	}

	/** The modes on now (README.md, "Modes"): those of the settings at start, switched by /admin/modes. */
	@Bean
	public EhrModes ehrModes() {
		return new EhrModes(EhrModes.parse(mySettings.modes), mySettings.throttleEvery);
	}

	/** Bulk export jobs advance within a second or so instead of HAPI's one-minute maintenance pass. */
	@Bean(destroyMethod = "close")
	public QuickJobMaintenance quickJobMaintenance(IJobMaintenanceService theMaintenance) {
		return new QuickJobMaintenance(theMaintenance);
	}

	@Bean
	public PartitionSettings partitionSettings() {
		return new PartitionSettings();
	}

	/** No subscription channel types: the server never calls out. */
	@Bean
	public SubscriptionSettings subscriptionSettings() {
		return new SubscriptionSettings();
	}

	@Bean(destroyMethod = "close")
	public DataSource dataSource() {
		BasicDataSource ds = new BasicDataSource();
		ds.setDriver(new org.h2.Driver());
		ds.setUrl(mySettings.jdbcUrl());
		ds.setUsername("sa");
		ds.setPassword("");
		ds.setMaxTotal(20);
		ds.setMaxWait(Duration.ofSeconds(30));
		return ds;
	}

	@Bean
	@Primary
	public LocalContainerEntityManagerFactoryBean entityManagerFactory(
			ConfigurableListableBeanFactory theBeanFactory,
			FhirContext theFhirContext,
			JpaStorageSettings theStorageSettings,
			DataSource theDataSource) {
		LocalContainerEntityManagerFactoryBean emf =
				HapiEntityManagerFactoryUtil.newEntityManagerFactory(theBeanFactory, theFhirContext, theStorageSettings);
		emf.setPersistenceUnitName("EHR_PU");
		emf.setDataSource(theDataSource);

		Properties jpa = new Properties();
		jpa.put("hibernate.dialect", HapiFhirH2Dialect.class.getName());
		jpa.put("hibernate.hbm2ddl.auto", "update");
		jpa.put("hibernate.format_sql", "false");
		jpa.put("hibernate.show_sql", "false");
		jpa.put("hibernate.jdbc.batch_size", "20");
		jpa.put("hibernate.cache.use_query_cache", "false");
		jpa.put("hibernate.cache.use_second_level_cache", "false");
		jpa.put("hibernate.cache.use_structured_entries", "false");
		jpa.put("hibernate.cache.use_minimal_puts", "false");
		jpa.put("hibernate.search.enabled", "false");
		emf.setJpaProperties(jpa);
		return emf;
	}

	@Bean
	@Primary
	public JpaTransactionManager transactionManager(EntityManagerFactory theEntityManagerFactory) {
		JpaTransactionManager tm = new JpaTransactionManager();
		tm.setEntityManagerFactory(theEntityManagerFactory);
		return tm;
	}

	/**
	 * The FHIR REST endpoint. Only HAPI's stock JPA providers are registered;
	 * no validating interceptor, so writes are never validated, while
	 * {@code $validate} (part of every resource provider) is.
	 */
	@Bean
	public RestfulServer restfulServer(
			FhirContext theFhirContext,
			@Qualifier("myResourceProvidersR4") ResourceProviderFactory theResourceProviders,
			@Qualifier("mySystemProviderR4") JpaSystemProvider<?, ?> theSystemProvider,
			IFhirSystemDao<?, ?> theSystemDao,
			JpaStorageSettings theStorageSettings,
			ISearchParamRegistry theSearchParamRegistry,
			IValidationSupport theValidationSupport,
			DatabaseBackedPagingProvider thePagingProvider,
			ValueSetOperationProvider theValueSetOperationProvider,
			DaoRegistry theDaoRegistry,
			BulkDataExportProvider theBulkExport,
			EhrModes theModes) {

		theFhirContext.setNarrativeGenerator(new NullNarrativeGenerator());

		RestfulServer server = new RestfulServer(theFhirContext);
		server.registerProviders(theResourceProviders.createProviders());
		server.registerProvider(theSystemProvider);
		server.registerProvider(theValueSetOperationProvider);
		server.registerProvider(theBulkExport);

		JpaCapabilityStatementProvider capabilities = new JpaCapabilityStatementProvider(
				server, theSystemDao, theStorageSettings, theSearchParamRegistry, theValidationSupport);
		capabilities.setImplementationDescription("fhir-migraine local test EHR (HAPI FHIR JPA, R4, H2)");
		server.setServerConformanceProvider(capabilities);

		thePagingProvider.setDefaultPageSize(mySettings.defaultPageSize);
		thePagingProvider.setMaximumPageSize(mySettings.maxPageSize);
		server.setPagingProvider(thePagingProvider);

		server.setServerAddressStrategy(new IncomingRequestAddressStrategy());
		server.setDefaultResponseEncoding(EncodingEnum.JSON);
		server.setDefaultPrettyPrint(false);

		server.registerInterceptor(new ResponseHighlighterInterceptor());
		LoggingInterceptor requestLog = new LoggingInterceptor();
		requestLog.setLoggerName("ehr.requests");
		requestLog.setMessageFormat(
				"${requestVerb} ${requestUrl}${requestParameters} -> ${operationType} ${processingTimeMillis}ms");
		requestLog.setErrorMessageFormat("ERROR ${requestVerb} ${requestUrl}${requestParameters} -> ${exceptionMessage}");
		requestLog.setLogExceptions(true);
		server.registerInterceptor(requestLog);

		// The modes: each does nothing while it is off (README.md, "Modes").
		server.registerInterceptor(new ModesStatement(theModes));
		server.registerInterceptor(new Throttle(theModes));
		server.registerInterceptor(new StrictReferences(theModes, theFhirContext, theDaoRegistry));
		server.registerInterceptor(new NoTransaction(theModes));
		server.registerInterceptor(new NoConditional(theModes));
		server.registerInterceptor(new RestrictedCreate(theModes, theFhirContext));
		server.registerInterceptor(new MinimalResponse(theModes));
		server.registerInterceptor(new RelativeLinks(theModes));
		server.registerInterceptor(new LimitedSearch(theModes));
		return server;
	}
}
