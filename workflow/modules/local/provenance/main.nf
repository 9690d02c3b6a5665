process CFRNA_PROVENANCE {
    tag "pipeline_info"
    label 'process_single'

    conda "${moduleDir}/environment.yml"
    container 'localhost/cfrna:0.1.0'

    input:
    val params_json                        // string: the run's params as JSON
    path samplesheet                       // file: the user's samplesheet (FASTQ paths resolve against its real folder)
    path contrasts                         // file: contrasts CSV, or []
    tuple val(meta), path(fasta)           // reference genome FASTA
    tuple val(meta2), path(gtf)            // reference annotation
    path gene_sets, stageAs: 'gene_sets/*' // files: GMT, or []
    val aligner                            // string: mappy | star

    output:
    path "pipeline_info/params.json"          , emit: params
    path "pipeline_info/software_versions.yml", emit: versions_yml
    path "pipeline_info/input_checksums.tsv"  , emit: checksums
    tuple val("${task.process}"), val('cfrna'), eval('cfrna --version | sed "s/^cfrna //"'), emit: versions_cfrna, topic: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    // the same writers as `cfrna run` (cfrna.pipeline.provenance): identical file formats
    def args = task.ext.args ?: ''
    def gmt = gene_sets ? "--gene-sets ${gene_sets.join(' ')}" : ''
    def contrasts_arg = contrasts ? "--contrasts ${contrasts}" : ''
    """
    cat <<'CFRNA_PARAMS_EOF' > nf_params.json
    ${params_json}
    CFRNA_PARAMS_EOF

    cfrna provenance \\
        --samplesheet ${samplesheet} \\
        --fasta ${fasta} \\
        --gtf ${gtf} \\
        ${contrasts_arg} \\
        ${gmt} \\
        --aligner ${aligner} \\
        --params-json nf_params.json \\
        --outdir pipeline_info \\
        ${args}
    """

    stub:
    """
    mkdir -p pipeline_info
    touch pipeline_info/params.json pipeline_info/software_versions.yml pipeline_info/input_checksums.tsv
    """
}
