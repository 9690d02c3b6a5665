process CFRNA_PROVENANCE {
    tag "pipeline_info"
    label 'process_single'
    conda "${moduleDir}/environment.yml"

    input:
    val params_json                        // string: the run's params as JSON
    path samplesheet                       // file: the user's samplesheet (FASTQ paths resolve against its real folder)
    path contrasts                         // file: contrasts CSV, or []
    path fasta                             // file: genome FASTA
    path gtf                               // file: GTF
    path gene_sets, stageAs: 'gene_sets/*' // files: GMT, or []
    val aligner                            // string: mappy | star

    output:
    path "pipeline_info/params.json"          , emit: params
    path "pipeline_info/software_versions.yml", emit: versions_yml
    path "pipeline_info/input_checksums.tsv"  , emit: checksums
    path "versions.yml"                       , emit: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    // the same writers as `cfrna run` (cfrna.pipeline.provenance): identical file formats
    def gmt = gene_sets ? gene_sets.collect { "'${it}'" }.join(', ') : ''
    """
    mkdir -p pipeline_info
    cat <<'CFRNA_PARAMS_EOF' > nf_params.json
    ${params_json}
    CFRNA_PARAMS_EOF
    python3 - <<'CFRNA_PY_EOF'
    import json, os, types
    from pathlib import Path
    from cfrna.io.samplesheet import read_samplesheet
    from cfrna.pipeline import provenance as prov
    info = Path("pipeline_info")
    prov.write_params(info / "params.json", json.loads(Path("nf_params.json").read_text()))
    opts = types.SimpleNamespace(samplesheet="${samplesheet}", contrasts="${contrasts ?: ''}" or None,
                                 fasta="${fasta}", gtf="${gtf}", gene_sets=[${gmt}])
    sheet = read_samplesheet(os.path.realpath("${samplesheet}"))
    prov.write_checksums(info / "input_checksums.tsv", opts, sheet)
    prov.write_versions(info / "software_versions.yml", aligner="${aligner}")
    CFRNA_PY_EOF

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        cfrna: \$(python3 -c 'import cfrna; print(cfrna.__version__)')
    END_VERSIONS
    """

    stub:
    """
    mkdir -p pipeline_info
    touch pipeline_info/params.json pipeline_info/software_versions.yml pipeline_info/input_checksums.tsv
    echo '"${task.process}": {cfrna: stub}' > versions.yml
    """
}
